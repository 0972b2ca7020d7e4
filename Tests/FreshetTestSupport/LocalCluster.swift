import Foundation
import XCTest

/// A real Tansu broker and a real redis-server on free loopback ports,
/// started with `LocalServices` (as `freshet run` starts its embedded
/// default) and stopped at the end of the test.
package final class LocalCluster {
    package let directory: String
    package let brokerPort: Int
    package let redisPort: Int
    package var brokers: String { "127.0.0.1:\(brokerPort)" }
    package var redisURL: String { "redis://127.0.0.1:\(redisPort)" }
    private let services = LocalServices()

    package static var packageRoot: String {
        // Tests/FreshetTestSupport/LocalCluster.swift -> package root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// Throws `XCTSkip` when Tansu is not installed, `LocalServices.StartError` when a server does not start.
    package init(withBroker: Bool = true, redisArguments: [String] = []) throws {
        let root = Self.packageRoot
        guard !withBroker || FileManager.default.isExecutableFile(atPath: "\(root)/.freshet/bin/tansu") else {
            throw XCTSkip("Tansu not installed: run scripts/setup.sh (the README's test command does)")
        }
        directory = NSTemporaryDirectory() + "freshet-it-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        brokerPort = try Self.freePort()
        redisPort = try Self.freePort()
        if withBroker { try services.startBroker(port: brokerPort, directory: directory, ifInUse: .fail) }
        try services.startRedis(port: redisPort, directory: directory, arguments: redisArguments, ifInUse: .fail)
    }

    /// Stops both servers (SIGTERM, then SIGKILL after 5 s).
    package func stop() { services.stopAll() }

    /// Kills Redis with SIGKILL: a crash, nothing flushed but what its own persistence wrote.
    package func stopRedis() throws { services.kill(port: redisPort) }

    /// Starts Redis again on the same port and directory (after `stopRedis`).
    package func startRedis(arguments: [String] = []) throws {
        try services.startRedis(port: redisPort, directory: directory, arguments: arguments, ifInUse: .fail)
    }

    /// SIGKILLs the process whose pid `path` holds (a server started by a
    /// `freshet run` child, which only its pid file names) and waits until it is gone.
    package static func killPidFile(_ path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        for _ in 0..<100 { if kill(pid, 0) != 0 { break }; usleep(20_000); _ = waitpid(pid, &status, WNOHANG) }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A loopback port for a test's server (`LoopbackPort.freeForServer`).
    package static func freePort(plus offset: Int? = nil) throws -> Int {
        try LoopbackPort.freeForServer(plus: offset)
    }
}
