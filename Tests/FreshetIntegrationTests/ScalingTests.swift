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
    typealias T = AdminTasks

    /// Every task of the default topology over 4-partition sources:
    /// interactions, impressions, counts (the examples' counts stage), items.
    static let allTasks: [String] = (0..<EndToEndTests.partitions).flatMap { p in
        ["interactions-\(p)", "impressions-\(p)", "counts-\(p)", "items-\(p)"]
    }

    /// Windows must not depend on wall-clock idleness here (processes are paused
    /// and restarted on purpose): idle sources would advance the watermark past
    /// the oracle's final one.
    static let topologyExtra = "event_time:\n  idle_timeout: 10m\n"

    static func startInstance(_ cluster: LocalCluster, topology: String, group: String, name: String,
                              bounded: Bool = false, adminPort: Int = -1) throws -> ChildProcess {
        var arguments = ["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                         "--group", group, "--admin-port=\(adminPort)"]
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

    /// Stops `instance` gracefully, then waits until the survivors (their admin
    /// ports) own every task between them, each task once: the group settled.
    /// Scale in one instance at a time: a member that leaves while the group is
    /// still rebalancing can leave the test broker's group waiting for it (the
    /// next join then hangs), so the group settles between leaves.
    static func scaleIn(_ instance: ChildProcess, survivors: [Int], tasks: [String] = allTasks,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        try stopGracefully(instance, file: file, line: line)
        // Its endpoint is gone now: the hand-back can only be read from its log.
        let owned = FaultInjection.ownedAtStop(instance.logPath)
        XCTAssertEqual(Set(FaultInjection.revocations(instance.logPath)).intersection(owned), owned,
                       "\(instance.logPath) hands back every task it owned", file: file, line: line)
        guard !survivors.isEmpty else { return }
        try T.waitUntil(ports: survivors, timeout: 60, "the survivors own every task once \(instance.logPath) left") {
            T.partition($0, covers: Set(tasks))
        }
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
        let all = Set(Self.allTasks)
        let (portA, portB, portC) = (try LocalCluster.freePort(), try LocalCluster.freePort(), try LocalCluster.freePort())

        // One instance.
        let a = try Self.startInstance(cluster, topology: topology, group: group, name: "a", adminPort: portA)
        defer { if a.isRunning { a.signal(SIGKILL) } }
        try T.waitUntil(port: portA, timeout: 60, "instance a alone owns every task") { $0.memberOfGroup && $0.owned == all }
        produced += try EndToEndTests.produce(chunks[1], to: cluster, randomKeys: false)

        // Scale out to 3; once b and c own tasks (the group settled), more events arrive for all three.
        let b = try Self.startInstance(cluster, topology: topology, group: group, name: "b", adminPort: portB)
        defer { if b.isRunning { b.signal(SIGKILL) } }
        let c = try Self.startInstance(cluster, topology: topology, group: group, name: "c", adminPort: portC)
        defer { if c.isRunning { c.signal(SIGKILL) } }
        let three = try T.waitUntil(ports: [portA, portB, portC], timeout: 90, "a, b and c each own tasks, every task once") {
            $0.allSatisfy { !$0.owned.isEmpty } && T.partition($0, covers: all)
        }
        XCTAssertLessThan(three[0].owned.count, all.count, "a handed tasks over to the new instances")
        produced += try EndToEndTests.produce(chunks[2], to: cluster, randomKeys: false)
        let working = try T.waitUntil(ports: [portA, portB, portC], timeout: 90, "the three instances read the third chunk") {
            T.partition($0, covers: all) && T.caughtUp($0, to: OwnershipTests.sourceEnds(produced))
        }
        XCTAssertTrue(a.isRunning && b.isRunning && c.isRunning, "three instances run")
        for (name, snapshot) in zip(["a", "b", "c"], working) {
            XCTAssertGreaterThan(snapshot.tasks.reduce(0) { $0 + $1.recordsProcessed }, 0, "\(name) did part of the work: \(snapshot)")
        }

        // Scale in to 2: c leaves gracefully; its tasks move to a and b.
        XCTAssertFalse(working[2].owned.isEmpty, "c owns tasks when it leaves")
        try Self.scaleIn(c, survivors: [portA, portB])
        produced += try EndToEndTests.produce(chunks[3], to: cluster, randomKeys: false)
        try T.waitUntil(ports: [portA, portB], timeout: 90, "a and b read the last chunk") {
            T.partition($0, covers: all) && T.caughtUp($0, to: OwnershipTests.sourceEnds(produced))
        }

        // Stop everything gracefully, one at a time; a single bounded instance finishes the stream.
        try Self.scaleIn(a, survivors: [portB])
        try Self.scaleIn(b, survivors: [])
        let oracle = FeatureOracle(events: produced)
        try Self.finishAndCompare(cluster, topology: topology, group: group, oracle: oracle)
    }

    /// Two instances of one group with different topology files: the second
    /// refuses to start (exit 1, naming the setting that differs) while the
    /// first runs, and the first goes on; a clean stop removes its entry
    /// from the group's members. (Until the eighteenth session both ran and
    /// wrote windows of two lengths.)
    func testAnInstanceWithAnotherTopologyRefusesToStart() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: Self.topologyExtra)
        let other = try EndToEndTests.writeTopology(in: cluster.directory, extra: Self.topologyExtra + "windows:\n  pane: 10m\n")
        let group = "mixed"
        let members = "freshet:\(group):members"
        let redis = try RedisConnection(url: cluster.redisURL)
        let a = try Self.startInstance(cluster, topology: topology, group: group, name: "a")
        defer { if a.isRunning { a.signal(SIGKILL) } }
        XCTAssertTrue(try F.waitUntil(timeout: 60) { try redis.hgetall(members).count == 1 }, "a registered:\n\(a.logTail())")

        let b = try Self.startInstance(cluster, topology: other, group: group, name: "b")
        defer { if b.isRunning { b.signal(SIGKILL) } }
        XCTAssertEqual(try b.wait(timeout: 60), 1, b.logTail())
        let refusal = b.logTail()
        XCTAssertTrue(refusal.contains("runs another topology (windows.pane: 10m here, 1h there"), refusal)
        XCTAssertTrue(a.isRunning, "the member already running goes on")
        XCTAssertEqual(try redis.hgetall(members).count, 1, "only a is a member")

        try Self.stopGracefully(a)
        XCTAssertEqual(try redis.hgetall(members).count, 0, "a clean stop leaves the group's members")
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
        let all = Set(Self.allTasks)
        let (portA, portB) = (try LocalCluster.freePort(), try LocalCluster.freePort())

        let a = try Self.startInstance(cluster, topology: topology, group: group, name: "a", adminPort: portA)
        defer { if a.isRunning { a.signal(SIGCONT); a.signal(SIGKILL) } }
        // Let a read and checkpoint the first part, then freeze it with state in hand.
        let firstHalf = OwnershipTests.sourceEnds(produced)
        let aloneA = try T.waitUntil(port: portA, timeout: 60, "a owns every task, has read the first half and checkpointed it") {
            $0.owned == all && T.caughtUp([$0], to: firstHalf) && $0.tasks.allSatisfy { $0.position == nil || $0.lastCheckpointOffset != nil }
        }
        let aEpochs = aloneA.epochs
        XCTAssertEqual(Set(aEpochs.keys), all, "a holds an epoch for every task")
        a.signal(SIGSTOP)

        let b = try Self.startInstance(cluster, topology: topology, group: group, name: "b", adminPort: portB)
        defer { if b.isRunning { b.signal(SIGKILL) } }
        // a's session (6 s) must expire before b gets a's partitions.
        let takenOver = try T.waitUntil(port: portB, timeout: 60, "b takes every task over from the frozen a") { $0.owned == all }
        let bEpochs = takenOver.epochs
        for task in Self.allTasks {
            XCTAssertGreaterThan(bEpochs[task] ?? 0, aEpochs[task] ?? .max, "b's epoch of \(task) is newer than a's")
        }
        produced += try EndToEndTests.produce(Array(events[5_000...]), to: cluster, randomKeys: false)
        let everything = OwnershipTests.sourceEnds(produced)
        try T.waitUntil(port: portB, timeout: 60, "b reads the second half") { T.caughtUp([$0], to: everything) }

        // Thaw the zombie. It still believes it owns every task and has state to
        // write; its endpoint shows the snapshot from before the freeze until the
        // processing thread runs again and drops the tasks (fenced or lost).
        a.signal(SIGCONT)
        try T.waitUntil(port: portA, timeout: 60, "the thawed a holds no task under its stale epoch") { snapshot in
            !snapshot.tasks.contains { aEpochs[$0.task] == $0.epoch }
        }

        // No zombie write landed: every task's epoch and checkpoint are b's (or,
        // if a has already rejoined and legitimately taken a task back, a's new
        // epoch), never a's stale one. a publishes a new epoch just after
        // writing it to Redis, so an epoch not yet shown is looked for again.
        var stale: [String] = []
        var unowned: [String] = []
        _ = try? T.waitUntil(ports: [portA, portB], timeout: 20, "every task's epoch and checkpoint to belong to a current owner") { snapshots in
            unowned = []
            for task in Self.allTasks {
                let epoch = (try? redis.command(["GET", "freshet:\(group):epoch:\(task)"]))?.string.flatMap { Int64($0) }
                let metaEpoch = (try? redis.command(["HGET", "freshet:\(group):ckpt:\(task):meta", "epoch"]))?.string.flatMap { Int64($0) }
                if epoch == aEpochs[task] || metaEpoch == aEpochs[task] {
                    stale.append("\(task): epoch \(String(describing: epoch)), checkpoint at epoch \(String(describing: metaEpoch))")
                }
                let owners = Set([bEpochs[task], snapshots[0].epochs[task], snapshots[1].epochs[task]].compactMap { $0 }
                    .filter { $0 > (aEpochs[task] ?? 0) })
                if !(epoch.map { owners.contains($0) } ?? false) || !(metaEpoch.map { owners.contains($0) } ?? false) {
                    unowned.append("\(task): epoch \(String(describing: epoch)), checkpoint at epoch \(String(describing: metaEpoch)), "
                        + "a's stale epoch \(aEpochs[task] ?? -1), owners \(owners)")
                }
            }
            return !stale.isEmpty || unowned.isEmpty
        }
        XCTAssertEqual(stale, [], "the zombie's stale epoch reached Redis")
        XCTAssertEqual(unowned, [], "epochs and checkpoints not written by a current owner")
        let fenced = F.lines(a.logPath, containing: "task fenced").count
        let lost = F.lines(a.logPath, containing: "lost=true").count
        print("zombie: a logged \(fenced) fenced task(s), \(lost) lost task(s)")

        // Let the group settle before stopping (a rejoins and takes some tasks back
        // legitimately, with new epochs): leaving in the middle of a join can leave
        // the test broker's group waiting for a member that is gone.
        try T.waitUntil(ports: [portA, portB], timeout: 60, "the thawed a rejoins the group and owns tasks, every task once") {
            !$0[0].owned.isEmpty && T.partition($0, covers: all)
        }
        try Self.scaleIn(a, survivors: [portB])
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
