import Foundation
import FreshetTestSupport
import XCTest

/// Task ownership as the admin endpoint shows it (`/tasks`), against a real
/// broker and Redis: tasks move from one instance to a second that joins and
/// back when it leaves, each move under a newer fencing epoch, resuming at
/// the previous owner's checkpoint with nothing read twice.
final class OwnershipTests: XCTestCase {
    typealias T = AdminTasks

    /// Records produced to each source partition, by task id (`interactions-2`):
    /// the position a source task reaches once it has read everything.
    static func sourceEnds(_ produced: [FeatureOracle.Event]) -> [String: Int64] {
        var ends: [String: Int64] = [:]
        for event in produced { ends["\(event.topic)-\(event.partition)", default: 0] += 1 }
        return ends
    }

    /// Every owned task has read its partition to the end and its latest
    /// checkpoint holds that position: the instance is idle and handed-off state is complete.
    static func settled(_ snapshot: T.Snapshot) -> Bool {
        snapshot.tasks.allSatisfy { task in
            task.lag == 0 && (task.position == nil || task.lastCheckpointOffset == task.position)
        }
    }

    func testTasksMoveToAJoiningInstanceAndBackOnTasksEndpoint() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let events = EndToEndTests.stream(seed: 909, events: 6_000)
        var produced = try EndToEndTests.produce(Array(events[..<3_000]), to: cluster, randomKeys: false)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: ScalingTests.topologyExtra)
        let group = "ownership"
        let all = Set(ScalingTests.allTasks)
        let portA = try LocalCluster.freePort(), portB = try LocalCluster.freePort()

        // a alone: owns every task, reads everything once, checkpoints it.
        let a = try ScalingTests.startInstance(cluster, topology: topology, group: group, name: "a", adminPort: portA)
        defer { if a.isRunning { a.signal(SIGKILL) } }
        var ends = Self.sourceEnds(produced)
        let alone = try T.waitUntil(port: portA, timeout: 90, "a owns every task, has read all \(produced.count) records and checkpointed them") {
            $0.memberOfGroup && $0.owned == all && T.caughtUp([$0], to: ends) && Self.settled($0)
        }
        print("OwnershipTests: a alone: \(alone)")
        XCTAssertEqual(alone.group, group)
        XCTAssertFalse(alone.bounded)
        let sourceTasks = alone.tasks.filter { $0.stage == "interactions" || $0.stage == "impressions" }
        XCTAssertEqual(sourceTasks.reduce(0) { $0 + $1.recordsProcessed }, produced.count,
                       "a read every produced record exactly once: \(alone)")
        for task in sourceTasks {
            XCTAssertEqual(task.position, ends[task.task], "\(task.task) is at the end of its partition")
            XCTAssertNotNil(task.watermarkMs, "\(task.task) has an event-time watermark")
        }
        let epochsA = alone.epochs
        XCTAssertEqual(Set(epochsA.keys), all, "every task has a fencing epoch")

        // b joins: the group splits the tasks; each moved task is b's under a
        // newer epoch and resumes at a's checkpoint, reading nothing again.
        let b = try ScalingTests.startInstance(cluster, topology: topology, group: group, name: "b", adminPort: portB)
        defer { if b.isRunning { b.signal(SIGKILL) } }
        let split = try T.waitUntil(ports: [portA, portB], timeout: 90, "a and b each own tasks, every task exactly once") {
            !$0[0].owned.isEmpty && !$0[1].owned.isEmpty && T.partition($0, covers: all) && $0.allSatisfy(Self.settled)
        }
        print("OwnershipTests: after b joined: a \(split[0])\nb \(split[1])")
        if let before = alone.generation, let after = split[1].generation {
            XCTAssertGreaterThan(after, before, "b joined a later generation of the group")
        }
        for task in split[1].tasks {
            XCTAssertGreaterThan(task.epoch ?? 0, epochsA[task.task] ?? .max, "b took \(task.task) under a newer epoch")
            XCTAssertEqual(task.position, alone.task(task.task)?.position, "b resumed \(task.task) where a stopped")
            XCTAssertEqual(task.recordsProcessed, 0, "a graceful move replays nothing of \(task.task)")
        }
        for task in split[0].tasks {
            XCTAssertEqual(task.epoch, epochsA[task.task], "a kept \(task.task) under its epoch (cooperative rebalance)")
        }

        // More events: both instances do part of the work.
        produced += try EndToEndTests.produce(Array(events[3_000...]), to: cluster, randomKeys: false)
        ends = Self.sourceEnds(produced)
        let working = try T.waitUntil(ports: [portA, portB], timeout: 90, "a and b read the second half") {
            T.caughtUp($0, to: ends) && $0.allSatisfy(Self.settled)
        }
        for (name, snapshot) in zip(["a", "b"], working) {
            XCTAssertGreaterThan(snapshot.tasks.reduce(0) { $0 + $1.recordsProcessed }, 0, "\(name) read records: \(snapshot)")
        }
        let epochsB = working[1].epochs

        // b leaves gracefully: a takes its tasks back under newer epochs.
        try ScalingTests.stopGracefully(b)
        let back = try T.waitUntil(port: portA, timeout: 90, "a owns every task again") {
            $0.memberOfGroup && $0.owned == all && T.caughtUp([$0], to: ends) && Self.settled($0)
        }
        for (task, epoch) in epochsB {
            XCTAssertGreaterThan(back.task(task)?.epoch ?? 0, epoch, "a took \(task) back under a newer epoch than b's")
            XCTAssertEqual(back.task(task)?.recordsProcessed, 0, "nothing of \(task) was read twice")
        }

        try ScalingTests.stopGracefully(a)
        let oracle = FeatureOracle(events: produced)
        // The bounded run only reads its own final watermark markers back (a few per task).
        try ScalingTests.finishAndCompare(cluster, topology: topology, group: group, oracle: oracle, maxFinalRecords: 500)
    }
}
