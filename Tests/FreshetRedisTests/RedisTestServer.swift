import Foundation
import XCTest
import FreshetRedis
import FreshetTestSupport
import FreshetProcess
#if canImport(Glibc)
import Glibc
#endif

/// A throw-away `redis-server` on 127.0.0.1 and a free port (found by binding
/// port 0), without persistence, with a Unix socket beside it, started through
/// `LocalServices` like every other local server. Tests start one in setUp
/// and stop it in tearDown.
final class RedisTestServer {
    let port: Int
    let unixSocketPath: String
    private let directory: String
    private let services = LocalServices()

    init() throws {
        port = try LocalCluster.freePort()
        unixSocketPath = "/tmp/freshet-redis-test-\(getpid())-\(port).sock"
        directory = "/tmp/freshet-redis-test-\(getpid())-\(port)"
        try start()
    }

    deinit { stop() }

    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }
    var url: String { "redis://127.0.0.1:\(port)" }

    /// Launches redis-server on `port` and waits until it accepts connections
    /// (a restart after `kill` reuses the port; a stranger on it is an error).
    func start() throws {
        try services.startRedis(port: port, directory: directory,
                                arguments: ["--unixsocket", unixSocketPath, "--unixsocketperm", "700"],
                                ifInUse: .fail)
    }

    /// SIGKILL, as a crash would.
    func kill() {
        services.kill(port: port)
    }

    func stop() {
        services.stopAll()
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
