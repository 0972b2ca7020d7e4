import Foundation
import FreshetRedis
import FreshetTestSupport
import FreshetWorkload
import XCTest

/// Outages of Redis and of the broker while an unbounded processor runs: it
/// stays up, pauses, says so on /readyz, resumes by itself, and the features
/// still equal the oracle's exactly.
final class OutageTests: XCTestCase {
    typealias F = FaultInjection
    typealias T = AdminTasks

    static let outageSeconds: TimeInterval = 30

    static func startProcessor(_ cluster: LocalCluster, topology: String, group: String, adminPort: Int) throws -> ChildProcess {
        try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                 "--group", group, "--admin-port=\(adminPort)"],
                                logPath: "\(cluster.directory)/processor.log")
    }

    static func readyz(_ port: Int) -> (status: Int, body: String)? { F.httpGet(port: port, path: "/readyz") }

    /// Waits until the single instance on `port` owns every task, has read
    /// every record of `produced` and checkpointed it.
    static func waitCaughtUp(_ port: Int, _ produced: [FeatureOracle.Event], _ what: String) throws {
        let ends = OwnershipTests.sourceEnds(produced)
        try T.waitUntil(port: port, timeout: 90, what) {
            $0.memberOfGroup && $0.owned == Set(ScalingTests.allTasks) && T.caughtUp([$0], to: ends) && OwnershipTests.settled($0)
        }
    }

    func testRedisDownThirtySecondsPausesAndResumes() throws {
        // Persistence: every acknowledged write (features, checkpoints, epochs) survives the restart.
        let persistence = ["--appendonly", "yes", "--appendfsync", "always"]
        let cluster = try LocalCluster(redisArguments: persistence)
        defer { cluster.stop() }
        let events = EndToEndTests.stream(seed: 31, events: 10_000)
        var produced = try EndToEndTests.produce(Array(events[..<5_000]), to: cluster, randomKeys: false)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: ScalingTests.topologyExtra)
        let group = "redis-outage"
        let adminPort = try LocalCluster.freePort()

        let processor = try Self.startProcessor(cluster, topology: topology, group: group, adminPort: adminPort)
        defer { if processor.isRunning { processor.signal(SIGKILL) } }
        XCTAssertTrue(F.waitUntil(timeout: 30) { Self.readyz(adminPort)?.status == 200 },
                      "ready before the outage: \(String(describing: Self.readyz(adminPort)))\n\(processor.logTail())")
        try Self.waitCaughtUp(adminPort, produced, "the first half read and checkpointed before the outage")

        try cluster.stopRedis()  // SIGKILL: nothing but the AOF survives
        let outageStart = Date()
        produced += try EndToEndTests.produce(Array(events[5_000...]), to: cluster, randomKeys: false)
        XCTAssertTrue(F.waitUntil(timeout: 15) {
            guard let reply = Self.readyz(adminPort) else { return false }
            return reply.status == 503 && reply.body.contains("redis unreachable")
        }, "/readyz reports Redis: \(String(describing: Self.readyz(adminPort)))\n\(processor.logTail())")
        while Date().timeIntervalSince(outageStart) < Self.outageSeconds {
            XCTAssertTrue(processor.isRunning, "the processor survives the Redis outage:\n\(processor.logTail())")
            if !processor.isRunning { return }
            F.pause(1)
        }
        XCTAssertNotEqual(Self.readyz(adminPort)?.status, 200, "still not ready at the end of the outage")
        XCTAssertEqual(Self.readyz(adminPort).map { _ in true }, true, "the admin server answers during the outage")

        try cluster.startRedis(arguments: persistence)
        XCTAssertTrue(F.waitUntil(timeout: 30) { Self.readyz(adminPort)?.status == 200 },
                      "ready again after Redis is back: \(String(describing: Self.readyz(adminPort)))\n\(processor.logTail())")
        try Self.waitCaughtUp(adminPort, produced, "everything read and checkpointed after the outage")
        processor.signal(SIGTERM)
        let status = try processor.wait(timeout: 60)
        XCTAssertEqual(status, 0, "graceful stop after the outage:\n\(processor.logTail())")

        let oracle = FeatureOracle(events: produced)
        try ScalingTests.finishAndCompare(cluster, topology: topology, group: group, oracle: oracle, maxFinalRecords: 2_000)
    }

    func testBrokerUnreachableThirtySecondsPausesAndResumes() throws {
        let cluster = try LocalCluster()
        defer {
            try? F.signalPidFile("\(cluster.directory)/tansu.pid", SIGCONT)
            cluster.stop()
        }
        let events = EndToEndTests.stream(seed: 59, events: 10_000)
        var produced = try EndToEndTests.produce(Array(events[..<5_000]), to: cluster, randomKeys: false)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: ScalingTests.topologyExtra)
        let group = "broker-outage"
        let adminPort = try LocalCluster.freePort()

        let processor = try Self.startProcessor(cluster, topology: topology, group: group, adminPort: adminPort)
        defer { if processor.isRunning { processor.signal(SIGKILL) } }
        XCTAssertTrue(F.waitUntil(timeout: 30) { Self.readyz(adminPort)?.status == 200 },
                      "ready before the outage: \(String(describing: Self.readyz(adminPort)))\n\(processor.logTail())")
        try Self.waitCaughtUp(adminPort, produced, "the first half read and checkpointed before the outage")

        // Freeze the broker: connections stay open but nothing answers (memory
        // storage, so killing it would lose the topics).
        let tansuPid = "\(cluster.directory)/tansu.pid"
        try F.signalPidFile(tansuPid, SIGSTOP)
        let outageStart = Date()
        var notReady: String?
        while Date().timeIntervalSince(outageStart) < Self.outageSeconds {
            XCTAssertTrue(processor.isRunning, "the processor survives the broker outage:\n\(processor.logTail())")
            if !processor.isRunning { break }
            if let reply = Self.readyz(adminPort), reply.status == 503 { notReady = reply.body }
            F.pause(1)
        }
        // The session times out during the outage: the instance is out of the group.
        XCTAssertNotNil(notReady, "/readyz says not ready while the broker is unreachable")
        print("broker outage: /readyz said \(notReady ?? "ready")")
        try F.signalPidFile(tansuPid, SIGCONT)
        guard processor.isRunning else { return }

        // Events keep coming once the broker answers again; the processor rejoins
        // (if its partitions were lost), takes its tasks back, and resumes.
        produced += try EndToEndTests.produce(Array(events[5_000...]), to: cluster, randomKeys: false)
        try T.waitUntil(port: adminPort, timeout: 60, "ready again, owning every task, after the broker is back") {
            $0.ready && $0.memberOfGroup && $0.owned == Set(ScalingTests.allTasks)
        }
        print("broker outage: resumed \(Int(Date().timeIntervalSince(outageStart) - Self.outageSeconds)) s after the broker came back")
        try Self.waitCaughtUp(adminPort, produced, "everything read and checkpointed after the outage")
        XCTAssertTrue(processor.isRunning, "the processor is still up:\n\(processor.logTail())")
        processor.signal(SIGTERM)
        let status = try processor.wait(timeout: 60)
        XCTAssertEqual(status, 0, "graceful stop after the outage:\n\(processor.logTail())")

        let oracle = FeatureOracle(events: produced)
        try ScalingTests.finishAndCompare(cluster, topology: topology, group: group, oracle: oracle, maxFinalRecords: 2_000)
    }
}
