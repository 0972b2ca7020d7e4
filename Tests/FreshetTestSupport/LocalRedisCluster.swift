import Foundation
import XCTest

/// A real Redis Cluster on loopback (3 masters, 3 replicas): six
/// redis-servers in cluster mode started with `LocalServices` (each in
/// `directory/node-<port>`), joined by `redis-cli --cluster create`, and
/// stopped at the end of the test.
package final class LocalRedisCluster {
    package let directory: String
    package let ports: [Int]
    private let services = LocalServices()
    /// `redis+cluster://127.0.0.1:p1,...` (every node as a seed).
    package var url: String { "redis+cluster://" + ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") }

    /// - Parameter nodeTimeoutMs: `cluster-node-timeout` (how long a silent master lasts before failover).
    /// - Throws: `LocalServices.StartError` when a node does not start, `TestFailure` when
    ///   the cluster is not formed within 20 s.
    package init(nodeTimeoutMs: Int = 2000) throws {
        directory = NSTemporaryDirectory() + "freshet-cluster-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var attempt = 1
        while true {
            // Each node's cluster bus listens on its port + 10000.
            let chosen = try (0..<6).map { _ in try LocalCluster.freePort(plus: 10_000) }
            do {
                try Self.start(chosen, directory: directory, services: services, nodeTimeoutMs: nodeTimeoutMs)
                ports = chosen
                break
            } catch is LocalServices.StartError where attempt < 3 {
                // A port taken between the check and the start (by a process
                // outside the test's reach): start over on new ports.
                services.stopAll()
                attempt += 1
            } catch {
                services.stopAll()
                throw error
            }
        }
    }

    private static func start(_ ports: [Int], directory: String, services: LocalServices, nodeTimeoutMs: Int) throws {
        for port in ports {
            try services.startRedis(port: port, directory: "\(directory)/node-\(port)",
                                    arguments: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                                "--cluster-node-timeout", "\(nodeTimeoutMs)"],
                                    ifInUse: .fail)
        }
        try ChildProcess.run("redis-cli", ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" }
                             + ["--cluster-replicas", "1", "--cluster-yes"])
        try waitUntilFormed(ports, timeout: 20)
    }

    package func stop() { services.stopAll() }

    /// Kills one node's redis-server with SIGKILL (a crashed master).
    package func kill(port: Int) throws { services.kill(port: port) }

    /// Every node reports `cluster_state:ok`, and every replica's link to its
    /// master is up (so that a master's writes can be acknowledged by `WAIT` from the start).
    private static func waitUntilFormed(_ ports: [Int], timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        for port in ports {
            while true {
                let info = (try? ChildProcess.run("redis-cli", ["-p", "\(port)", "cluster", "info"])) ?? ""
                let replication = (try? ChildProcess.run("redis-cli", ["-p", "\(port)", "info", "replication"])) ?? ""
                let linked = !replication.contains("role:slave") || replication.contains("master_link_status:up")
                if info.contains("cluster_state:ok") && linked { break }
                guard Date() < deadline else {
                    throw TestFailure("Redis Cluster node \(port) not ready within \(Int(timeout)) s:\n\(info)\n\(replication)")
                }
                usleep(100_000)
            }
        }
    }
}
