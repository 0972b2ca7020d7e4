import Foundation
import XCTest

/// A real Redis Cluster on loopback (3 masters, 3 replicas), started with
/// scripts/start-redis-cluster.sh and stopped at the end of the test.
package final class LocalRedisCluster {
    package let directory: String
    package let ports: [Int]
    /// `redis+cluster://127.0.0.1:p1,...` (every node as a seed).
    package var url: String { "redis+cluster://" + ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") }

    /// - Parameter nodeTimeoutMs: `cluster-node-timeout` (how long a silent master lasts before failover).
    package init(nodeTimeoutMs: Int = 2000) throws {
        directory = NSTemporaryDirectory() + "freshet-cluster-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var chosen: [Int] = []
        while chosen.count < 6 {
            // The cluster bus listens on port + 10000: both must be free.
            let port = try LocalCluster.freePort()
            guard port + 10_000 <= 65_535, !chosen.contains(port), LoopbackPort.isFree(port + 10_000) else { continue }
            chosen.append(port)
        }
        ports = chosen
        let log = "\(directory)/start.log"
        let child = try ChildProcess("/usr/bin/env", ["FRESHET_CLUSTER_NODE_TIMEOUT=\(nodeTimeoutMs)", "bash",
                                                      "\(LocalCluster.packageRoot)/scripts/start-redis-cluster.sh", directory]
                                         + ports.map(String.init), logPath: log)
        guard try child.wait(timeout: 60) == 0 else {
            stop()
            throw TestFailure("start-redis-cluster.sh failed:\n\(child.logTail())")
        }
    }

    package func stop() {
        _ = try? ChildProcess.runScript("stop-redis-cluster.sh", [directory])
    }

    /// Kills one node's redis-server with SIGKILL (a crashed master).
    package func kill(port: Int) throws {
        try LocalCluster.killPidFile("\(directory)/node-\(port)/redis.pid")
    }
}
