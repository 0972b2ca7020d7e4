import Foundation
import Synchronization
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

    /// A loopback port free now, below the system's ephemeral port range
    /// when it leaves room, and never handed out before in this process.
    /// A port of the ephemeral range (what `LoopbackPort.free` gives) can be
    /// taken by any outgoing connection between the check and the server's
    /// bind, seconds later for a child's admin port or a cluster node's bus
    /// port (`Address already in use`, a flaky test); no outgoing connection
    /// uses a port below the range.
    /// - Parameter plus: another offset that must be free too, below the
    ///   range as well (a Redis Cluster node's bus port, port + 10000).
    package static func freePort(plus offset: Int? = nil) throws -> Int {
        /// `port` (free) is ours: its offset port is free too, and it was never handed out.
        func take(_ port: Int) -> Bool {
            guard offset.map({ port + $0 <= 65_535 && LoopbackPort.isFree(port + $0) }) ?? true else { return false }
            return handedOut.withLock { $0.insert(port).inserted }
        }
        let candidates = 10_000..<(ephemeralPortRangeLow() - (offset ?? 0))
        for _ in 0..<10_000 where candidates.count >= 1_000 {
            let port = Int.random(in: candidates)
            if LoopbackPort.isFree(port) && take(port) { return port }
        }
        // No room below the range (a system configured so): any free port.
        while true {
            let port = try LoopbackPort.free()
            if take(port) { return port }
        }
    }

    private static let handedOut = Mutex<Set<Int>>([])

    /// The low end of `net.ipv4.ip_local_port_range` (32768 when unreadable).
    private static func ephemeralPortRangeLow() -> Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32_768
    }
}
