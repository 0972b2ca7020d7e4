import Foundation
import XCTest
import FreshetRedis
#if canImport(Glibc)
import Glibc
#endif

/// A throw-away `redis-server` on 127.0.0.1 and a free port (found by binding
/// port 0), without persistence, with a Unix socket beside it. Tests start
/// one in setUp and stop it in tearDown.
final class RedisTestServer {
    let port: Int
    let unixSocketPath: String
    private var process: Process?

    init() throws {
        port = try Self.freePort()
        unixSocketPath = "/tmp/freshet-redis-test-\(getpid())-\(port).sock"
        try start()
    }

    deinit { stop() }

    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }
    var url: String { "redis://127.0.0.1:\(port)" }

    /// Launches redis-server on `port`; waits until it answers PING unless `wait` is false.
    func start(wait: Bool = true) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["redis-server", "--port", String(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no",
                             "--unixsocket", unixSocketPath, "--unixsocketperm", "700"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        if wait { try waitUntilReady() }
    }

    func waitUntilReady(timeoutSeconds: Double = 10) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while true {
            do {
                let connection = try RedisConnection(endpoint: endpoint, connectTimeoutMs: 200, commandTimeoutMs: 500)
                try connection.ping()
                return
            } catch {
                if Date() > deadline { throw error }
                usleep(20_000)
            }
        }
    }

    /// SIGKILL, as a crash would.
    func kill() {
        guard let process else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    func stop() {
        guard let process else { return }
        process.terminate()
        process.waitUntilExit()
        self.process = nil
        unlink(unixSocketPath)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw POSIXError(.EINVAL) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Base class: a fresh server per test.
class RedisServerTestCase: XCTestCase {
    var server: RedisTestServer!

    override func setUpWithError() throws {
        server = try RedisTestServer()
    }

    override func tearDown() {
        server?.stop()
        server = nil
    }

    func connect(_ endpoint: RedisEndpoint? = nil) throws -> RedisConnection {
        try RedisConnection(endpoint: endpoint ?? server.endpoint)
    }
}
