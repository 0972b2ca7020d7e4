import Foundation
import XCTest
import FreshetRedis
import FreshetTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A throw-away `redis-server` on 127.0.0.1 and a free port (found by binding
/// port 0), without persistence, with a Unix socket beside it. Tests start
/// one in setUp and stop it in tearDown.
final class RedisTestServer {
    let port: Int
    let unixSocketPath: String
    private var child: ChildProcess?

    init() throws {
        port = try LocalCluster.freePort()
        unixSocketPath = "/tmp/freshet-redis-test-\(getpid())-\(port).sock"
        try start()
    }

    deinit { stop() }

    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }
    var url: String { "redis://127.0.0.1:\(port)" }

    /// Launches redis-server on `port` (posix_spawn: Foundation's Process can
    /// hang in waitUntilExit on Linux); waits until it answers PING unless `wait` is false.
    func start(wait: Bool = true) throws {
        child = try ChildProcess("/usr/bin/env", ["redis-server", "--port", String(port), "--bind", "127.0.0.1",
                                                  "--save", "", "--appendonly", "no",
                                                  "--unixsocket", unixSocketPath, "--unixsocketperm", "700"],
                                 logPath: "/tmp/freshet-redis-test-\(getpid())-\(port).log")
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
        guard let child else { return }
        child.signal(SIGKILL)
        _ = try? child.wait(timeout: 5)
        self.child = nil
    }

    func stop() {
        guard let child else { return }
        child.signal(SIGTERM)
        _ = try? child.wait(timeout: 5)
        self.child = nil
        unlink(unixSocketPath)
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
