import Foundation
import XCTest

/// A real Tansu broker and a real redis-server on free loopback ports,
/// started with the project's scripts and stopped at the end of the test.
package final class LocalCluster {
    package let directory: String
    package let brokerPort: Int
    package let redisPort: Int
    package var brokers: String { "127.0.0.1:\(brokerPort)" }
    package var redisURL: String { "redis://127.0.0.1:\(redisPort)" }

    package static var packageRoot: String {
        // Tests/FreshetIntegrationTests/LocalCluster.swift -> package root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    package init(withBroker: Bool = true, redisArguments: [String] = []) throws {
        let root = Self.packageRoot
        guard !withBroker || FileManager.default.isExecutableFile(atPath: "\(root)/.freshet/bin/tansu") else {
            throw XCTSkip("Tansu not installed: run scripts/setup.sh (the README's test command does)")
        }
        directory = NSTemporaryDirectory() + "freshet-it-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        brokerPort = try Self.freePort()
        redisPort = try Self.freePort()
        if withBroker { try Self.script("start-broker.sh", ["\(brokerPort)", directory]) }
        try Self.script("start-redis.sh", ["\(redisPort)", directory] + redisArguments)
    }

    package func stop() {
        _ = try? Self.script("stop-services.sh", [directory])
    }

    package func stopRedis() throws { try Self.killPidFile("\(directory)/redis.pid") }

    package func startRedis(arguments: [String] = []) throws {
        try Self.script("start-redis.sh", ["\(redisPort)", directory] + arguments)
    }

    package static func killPidFile(_ path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        for _ in 0..<100 { if kill(pid, 0) != 0 { break }; usleep(20_000); _ = waitpid(pid, &status, WNOHANG) }
        try? FileManager.default.removeItem(atPath: path)
    }

    @discardableResult
    static func script(_ name: String, _ arguments: [String]) throws -> String {
        try ChildProcess.runScript(name, arguments)
    }

    /// A free loopback port (`LoopbackPort.free`).
    package static func freePort() throws -> Int { try LoopbackPort.free() }
}
