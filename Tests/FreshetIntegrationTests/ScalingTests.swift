import Foundation
import FreshetRedis
import FreshetTestSupport
import FreshetWorkload
import XCTest

/// Elastic scaling and zombie fencing against a real broker and Redis: instances
/// join and leave while events flow, one is frozen past its session timeout, and
/// the features still equal the oracle's exactly.
final class ScalingTests: XCTestCase {
    typealias F = FaultInjection

    /// Every task of the 4-partition sources: interactions, impressions, items.
    static let allTasks: [String] = (0..<EndToEndTests.partitions).flatMap { p in
        ["interactions-\(p)", "impressions-\(p)", "items-\(p)"]
    }

    /// Windows must not depend on wall-clock idleness here (processes are paused
    /// and restarted on purpose): idle sources would advance the watermark past
    /// the oracle's final one.
    static let topologyExtra = "event_time:\n  idle_timeout: 10m\n"

    static func startInstance(_ cluster: LocalCluster, topology: String, group: String, name: String,
                              bounded: Bool = false) throws -> ChildProcess {
        var arguments = ["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                         "--group", group, "--admin-port=-1"]
        if bounded { arguments.append("--stop-at-end") }
        return try FreshetBinary.start(arguments, logPath: "\(cluster.directory)/\(name).log")
    }

    /// SIGTERM (graceful: flush, checkpoint, commit, leave) and wait for exit 0.
    static func stopGracefully(_ instance: ChildProcess, timeout: TimeInterval = 60,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        instance.signal(SIGTERM)
        let status = try instance.wait(timeout: timeout)
        XCTAssertEqual(status, 0, "\(instance.logPath) exited with \(status):\n\(instance.logTail())", file: file, line: line)
    }

    /// Stops `instance` gracefully, then waits until `survivors` took over every
    /// task it owned. Scale in one instance at a time: a member that leaves while
    /// the group is still rebalancing can leave the test broker's group waiting
    /// for it (the next join then hangs), so the group settles between leaves.
    static func scaleIn(_ instance: ChildProcess, survivors: [ChildProcess],
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let before = survivors.reduce(0) { $0 + FaultInjection.assignments($1.logPath).count }
        try stopGracefully(instance, file: file, line: line)
        let owned = FaultInjection.ownedAtStop(instance.logPath)
        XCTAssertEqual(Set(FaultInjection.revocations(instance.logPath)).intersection(owned), owned,
                       "\(instance.logPath) hands back every task it owned", file: file, line: line)
        guard !survivors.isEmpty else { return }
        XCTAssertTrue(FaultInjection.waitUntil(timeout: 45) {
            survivors.reduce(0) { $0 + FaultInjection.assignments($1.logPath).count } >= before + owned.count
        }, "the survivors take over the \(owned.count) tasks of \(instance.logPath)", file: file, line: line)
        FaultInjection.pause(2)
    }

    /// The final bounded single instance, then the exact comparison with the oracle.
    /// - Parameter maxFinalRecords: when given, the bounded run must only mop up
    ///   (read at most this many records), i.e. the instances before it did the work.
    static func finishAndCompare(_ cluster: LocalCluster, topology: String, group: String, oracle: FeatureOracle,
                                 maxFinalRecords: Int? = nil,
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let final = try startInstance(cluster, topology: topology, group: group, name: "final", bounded: true)
        let status = try final.wait(timeout: 120)
        XCTAssertEqual(status, 0, "bounded run exited with \(status):\n\(final.logTail())", file: file, line: line)
        if let maxFinalRecords {
            XCTAssertLessThanOrEqual(recordsConsumed(final), maxFinalRecords,
                                     "the processor resumed and did the work itself; the bounded run only finishes", file: file, line: line)
        }
        let redis = try RedisConnection(url: cluster.redisURL)
        try EndToEndTests.assertRedisMatches(oracle, redis: redis, file: file, line: line)
    }

    /// 1 instance, then 3 (two join while events flow), then 2 (one leaves with
    /// SIGTERM), then a bounded single instance: features equal the oracle's, and
    /// the logs show that partitions really moved between the instances.
    func testOneThenThreeThenTwoInstancesStayExact() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let events = EndToEndTests.stream(seed: 2024, events: 12_000)
        let chunks = stride(from: 0, to: events.count, by: 3_000).map { Array(events[$0..<min($0 + 3_000, events.count)]) }
        var produced = try EndToEndTests.produce(chunks[0], to: cluster, randomKeys: false)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: Self.topologyExtra)
        let group = "scale"

        // One instance.
        let a = try Self.startInstance(cluster, topology: topology, group: group, name: "a")
        defer { if a.isRunning { a.signal(SIGKILL) } }
        XCTAssertTrue(F.waitUntil(timeout: 30) { F.assignments(a.logPath).count >= Self.allTasks.count },
                      "instance a alone takes every task:\n\(a.logTail())")
        produced += try EndToEndTests.produce(chunks[1], to: cluster, randomKeys: false)

        // Scale out to 3; once b and c own tasks, more events arrive for all three.
        let b = try Self.startInstance(cluster, topology: topology, group: group, name: "b")
        defer { if b.isRunning { b.signal(SIGKILL) } }
        let c = try Self.startInstance(cluster, topology: topology, group: group, name: "c")
        defer { if c.isRunning { c.signal(SIGKILL) } }
        XCTAssertTrue(F.waitUntil(timeout: 45) { !F.assignments(b.logPath).isEmpty && !F.assignments(c.logPath).isEmpty },
                      "b and c join and take tasks:\nb:\n\(b.logTail())\nc:\n\(c.logTail())")
        F.pause(2)  // let the cooperative rebalance settle
        produced += try EndToEndTests.produce(chunks[2], to: cluster, randomKeys: false)
        F.pause(3)
        XCTAssertTrue(a.isRunning && b.isRunning && c.isRunning, "three instances run")
        XCTAssertFalse(F.revocations(a.logPath).isEmpty, "a handed tasks over to the new instances:\n\(a.logTail())")

        // Scale in to 2: c leaves gracefully; its tasks move to a and b.
        try Self.scaleIn(c, survivors: [a, b])
        XCTAssertFalse(F.ownedAtStop(c.logPath).isEmpty, "c owned tasks when it left")
        produced += try EndToEndTests.produce(chunks[3], to: cluster, randomKeys: false)
        F.pause(4)

        // Stop everything gracefully, one at a time; a single bounded instance finishes the stream.
        try Self.scaleIn(a, survivors: [b])
        try Self.scaleIn(b, survivors: [])
        for instance in [a, b, c] {
            XCTAssertGreaterThan(Self.recordsConsumed(instance), 0, "\(instance.logPath) did part of the work")
        }
        let oracle = FeatureOracle(events: produced)
        try Self.finishAndCompare(cluster, topology: topology, group: group, oracle: oracle)
    }

    /// The record count of a freshet log's `stopped` line.
    static func recordsConsumed(_ instance: ChildProcess) -> Int {
        F.lines(instance.logPath, containing: "] stopped").last.flatMap { F.metadata("records", in: $0) }.flatMap { Int($0) } ?? 0
    }

    /// Instance a is frozen (SIGSTOP) past the session timeout; b takes every task
    /// over and processes more events; a is thawed. a's writes must be refused by
    /// fencing: the epochs and checkpoint metas stay b's, and the final features
    /// equal the oracle's.
    func testZombieAfterSigstopCannotOverwriteTheNewOwner() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let events = EndToEndTests.stream(seed: 77, events: 10_000)
        var produced = try EndToEndTests.produce(Array(events[..<5_000]), to: cluster, randomKeys: false)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: Self.topologyExtra)
        let group = "zombie"
        let redis = try RedisConnection(url: cluster.redisURL)

        let a = try Self.startInstance(cluster, topology: topology, group: group, name: "a")
        defer { if a.isRunning { a.signal(SIGCONT); a.signal(SIGKILL) } }
        XCTAssertTrue(F.waitUntil(timeout: 30) { F.assignments(a.logPath).count >= Self.allTasks.count },
                      "a takes every task:\n\(a.logTail())")
        let aEpochs = Dictionary(F.assignments(a.logPath).map { ($0.task, $0.epoch) }, uniquingKeysWith: { $1 })
        // Let a read and checkpoint the first part, then freeze it with state in hand.
        F.pause(3)
        a.signal(SIGSTOP)

        let b = try Self.startInstance(cluster, topology: topology, group: group, name: "b")
        defer { if b.isRunning { b.signal(SIGKILL) } }
        // a's session (6 s) must expire before b gets a's partitions.
        XCTAssertTrue(F.waitUntil(timeout: 45) { Set(F.assignments(b.logPath).map(\.task)).count >= Self.allTasks.count },
                      "b takes every task over from the frozen a:\n\(b.logTail())")
        let bEpochs = Dictionary(F.assignments(b.logPath).map { ($0.task, $0.epoch) }, uniquingKeysWith: { $1 })
        for task in Self.allTasks {
            XCTAssertGreaterThan(bEpochs[task] ?? 0, aEpochs[task] ?? .max, "b's epoch of \(task) is newer than a's")
        }
        produced += try EndToEndTests.produce(Array(events[5_000...]), to: cluster, randomKeys: false)
        F.pause(3)

        // Thaw the zombie. It still believes it owns every task and has state to write.
        let aLinesBefore = F.log(a.logPath).split(separator: "\n").count
        let assignedBeforeThaw = F.assignments(a.logPath).count
        a.signal(SIGCONT)
        XCTAssertTrue(F.waitUntil(timeout: 30) {
            let fresh = F.log(a.logPath).split(separator: "\n").dropFirst(aLinesBefore)
            return fresh.contains { $0.contains("task fenced") || ($0.contains("task revoked") && $0.contains("lost=true")) }
        }, "the thawed a notices it lost its tasks (fenced writes or lost partitions):\n\(a.logTail())")

        // No zombie write landed: every task's epoch and checkpoint are b's (or,
        // if a has already rejoined and legitimately taken a task back, a's new
        // epoch), never a's stale one.
        let aNewEpochs = Dictionary(F.assignments(a.logPath).map { ($0.task, $0.epoch) }, uniquingKeysWith: { $1 })
        for task in Self.allTasks {
            let epoch = try redis.command(["GET", "freshet:\(group):epoch:\(task)"]).string.flatMap { Int64($0) }
            let metaEpoch = try redis.command(["HGET", "freshet:\(group):ckpt:\(task):meta", "epoch"]).string.flatMap { Int64($0) }
            let owners = Set([bEpochs[task], aNewEpochs[task]].compactMap { $0 }.filter { $0 > (aEpochs[task] ?? 0) })
            XCTAssertTrue(epoch.map { owners.contains($0) } ?? false, "epoch of \(task) is \(String(describing: epoch)), owners \(owners)")
            XCTAssertTrue(metaEpoch.map { owners.contains($0) } ?? false,
                          "checkpoint of \(task) written at epoch \(String(describing: metaEpoch)), a's stale epoch was \(aEpochs[task] ?? -1), owners \(owners)")
        }
        let fenced = F.lines(a.logPath, containing: "task fenced").count
        let lost = F.lines(a.logPath, containing: "lost=true").count
        print("zombie: a logged \(fenced) fenced task(s), \(lost) lost task(s)")

        // Let the group settle before stopping (a rejoins and takes some tasks back
        // legitimately, with new epochs): leaving in the middle of a join can leave
        // the test broker's group waiting for a member that is gone.
        XCTAssertTrue(F.waitUntil(timeout: 30) { F.assignments(a.logPath).count > assignedBeforeThaw },
                      "the thawed a rejoins the group:\n\(a.logTail())")
        F.pause(3)
        try Self.scaleIn(a, survivors: [b])
        try Self.scaleIn(b, survivors: [])
        let oracle = FeatureOracle(events: produced)
        try Self.finishAndCompare(cluster, topology: topology, group: group, oracle: oracle)
        // The final instance owns every task now: each checkpoint carries the current epoch.
        for task in Self.allTasks {
            let epoch = try redis.command(["GET", "freshet:\(group):epoch:\(task)"]).string
            let metaEpoch = try redis.command(["HGET", "freshet:\(group):ckpt:\(task):meta", "epoch"]).string
            XCTAssertEqual(metaEpoch, epoch, "checkpoint of \(task) is the last owner's")
        }
    }
}
