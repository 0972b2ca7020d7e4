import FreshetCore
import FreshetFeatures
import FreshetKafka
@testable import FreshetRuntime
import Logging
import XCTest

/// The engine's roles without servers: the task contract's snapshot/restore
/// round trip for each kind, the task manager's routing and drop, the input
/// topics table, and the checkpointer's commit protocol against a fake host.
final class EngineRolesTests: XCTestCase {
    let hour: Int64 = 3_600_000
    let base: Int64 = 1_767_225_600_000  // 2026-01-01T00:00Z

    /// Examples off by default: these tests wire sources straight to item
    /// tasks (with examples on, item tasks read impressions from the counts
    /// stage; `CountTaskTests` covers that path).
    func factory(keyedByUser: Bool = true, examples: Bool = false) -> TaskFactory {
        var topology = Topology()
        topology.sources.keyedByUser = keyedByUser
        topology.embeddings.examples = examples
        return TaskFactory(topology: topology, stopAtEnd: false, decoder: EventDecoder(), panes: PaneSpec(),
                           trending: TrendingDecay(), interactionPartitions: 2, impressionPartitions: 1,
                           repartitionPartitions: 2, makeUserEmbeddingSide: { nil }, makeItemEmbeddingSide: { nil })
    }

    func interaction(_ user: String, _ item: String, ts: Int64) -> [UInt8] {
        Array(#"{"user_id":"\#(user)","item_id":"\#(item)","action":"click","ts":\#(ts)}"#.utf8)
    }

    func record(_ offset: Int64, _ value: [UInt8], partition: Int32 = 0) -> InputRecord {
        InputRecord(partition: partition, offset: offset, key: nil, value: value, timestampMs: nil)
    }

    /// What Redis would hold after a checkpoint (meta fields through their
    /// text form, the state hash by entity id), restored into `fresh`.
    func roundTrip(_ task: any StreamTask, into fresh: any StreamTask, nowMs: Int64) throws {
        let snapshot = task.snapshot()
        var state: [String: [UInt8]] = [:]
        var writer = ByteWriter(capacity: 64)
        for slot in snapshot.changed {
            writer.bytes.removeAll(keepingCapacity: true)
            let id = snapshot.encode(slot, &writer)
            state[id] = writer.bytes
        }
        var meta = snapshot.meta
        meta.epoch = 7
        meta.writtenAtMs = nowMs
        let parsed = try TaskCheckpoint.parse(Dictionary(uniqueKeysWithValues: meta.fields()), task: task.id)
        try fresh.restore(from: parsed, state: { apply in for (key, bytes) in state { try apply(key, bytes) } }, nowMs: nowMs)
    }

    // MARK: - The task contract

    func testSourceTaskRoundTripsThroughTheContract() throws {
        let id = TaskId(stage: .interactions, partition: 0)
        let output = DataflowTests.MemoryOutput(partitions: 1)
        let task = factory().make(id, topic: "interactions", nowMs: base)
        for offset in 0..<3 {
            task.process(record(Int64(offset), interaction("u1", "i\(offset)", ts: base + Int64(offset) * 1_000)), nowMs: base, output: output)
        }
        let fresh = factory().make(id, topic: "interactions", nowMs: base)
        try roundTrip(task, into: fresh, nowMs: base)
        let source = try XCTUnwrap(fresh as? SourceTask)
        XCTAssertEqual(fresh.nextOffset, 3)
        XCTAssertEqual(source.users?.features(of: "u1")?.interactionCount, 3)
        XCTAssertEqual(source.users?.features(of: "u1")?.recentItems, ["i2", "i1", "i0"])
        XCTAssertEqual(source.watermark.maxTimestamp, base + 2_000)
        XCTAssertEqual(fresh.gauges.store?.entries, 1)
        XCTAssertTrue(fresh.gauges.isInputWatermark)
        XCTAssertTrue(task.snapshot().changed.isEmpty, "a snapshot takes the changed entries")
    }

    func testItemTaskRoundTripsAndItsDuplicateFilterSurvives() throws {
        let output = DataflowTests.MemoryOutput(partitions: 1)
        let sources = factory()
        let a = sources.make(TaskId(stage: .interactions, partition: 0), topic: "interactions", nowMs: base)
        let b = sources.make(TaskId(stage: .interactions, partition: 1), topic: "interactions", nowMs: base)
        let c = sources.make(TaskId(stage: .impressions, partition: 0), topic: "impressions", nowMs: base)
        let now = base + 10 * hour
        a.process(record(0, interaction("u1", "i1", ts: base)), nowMs: now, output: output)
        a.process(record(1, interaction("u2", "i1", ts: base + 1)), nowMs: now, output: output)
        a.process(record(2, interaction("u4", "i3", ts: base + 3 * hour)), nowMs: now, output: output)
        b.process(record(0, interaction("u3", "i2", ts: base + 2 * hour), partition: 1), nowMs: now, output: output)
        let tick = TimeTick(nowMs: now, markersDue: true, finalMarkersDue: false)
        for source in [a, b, c] { source.advanceTime(tick, output: output) }
        _ = c.reachEnd(output: output)

        let id = TaskId(stage: .items, partition: 0)
        let item = sources.make(id, topic: "g-items-repartition", nowMs: now)
        for (offset, input) in output.items[0].enumerated() {
            item.process(record(Int64(offset), input.value), nowMs: now, output: output)
        }
        item.advanceTime(tick, output: output)
        let before = try XCTUnwrap((item as? ItemTask)?.store.features(of: "i1"))
        XCTAssertEqual(before.popularity7d, 2)

        let fresh = sources.make(id, topic: "g-items-repartition", nowMs: now)
        try roundTrip(item, into: fresh, nowMs: now)
        let restored = try XCTUnwrap(fresh as? ItemTask)
        XCTAssertEqual(fresh.nextOffset, item.nextOffset)
        XCTAssertEqual(restored.currentWatermark, (item as? ItemTask)?.currentWatermark)
        XCTAssertEqual(restored.store.features(of: "i1"), before)
        // A source replaying after a crash re-sends what the item task admitted: dropped.
        fresh.process(output.items[0][0], nowMs: now, output: output)
        XCTAssertEqual(restored.duplicatesDropped, 1)
        XCTAssertEqual(restored.store.features(of: "i1")?.popularity7d, 2)
    }

    func testUserTaskRoundTripsThroughTheContract() throws {
        let output = DataflowTests.MemoryOutput(partitions: 1)
        let tasks = factory(keyedByUser: false)
        let source = tasks.make(TaskId(stage: .interactions, partition: 0), topic: "interactions", nowMs: base)
        source.process(record(0, interaction("u1", "i1", ts: base)), nowMs: base, output: output)
        source.process(record(1, interaction("u1", "i2", ts: base + 1)), nowMs: base, output: output)
        let id = TaskId(stage: .users, partition: 0)
        let users = tasks.make(id, topic: "g-users-repartition", nowMs: base)
        for (offset, input) in output.users[0].enumerated() {
            users.process(record(Int64(offset), input.value), nowMs: base, output: output)
        }
        let fresh = tasks.make(id, topic: "g-users-repartition", nowMs: base)
        try roundTrip(users, into: fresh, nowMs: base)
        let restored = try XCTUnwrap(fresh as? UserTask)
        XCTAssertEqual(restored.users.features(of: "u1")?.interactionCount, 2)
        fresh.process(output.users[0][1], nowMs: base, output: output)
        XCTAssertEqual(restored.duplicatesDropped, 1, "the restored filter knows offset 1 of interactions-0")
    }

    // MARK: - Task manager and input topics

    func inputs() -> InputTopics {
        InputTopics(topics: [(.interactions, "interactions"), (.impressions, "impressions"),
                             (.items, "g-items-repartition"), (.users, "g-users-repartition")],
                    subscribe: [.interactions, .impressions, .items])
    }

    func testInputTopicsResolveEachTopicToItsStage() {
        let topics = inputs()
        XCTAssertEqual(topics.names, ["interactions", "impressions", "g-items-repartition"])
        XCTAssertEqual(topics.taskId(for: TopicPartition(topic: "g-items-repartition", partition: 3)), TaskId(stage: .items, partition: 3))
        XCTAssertNil(topics.taskId(for: TopicPartition(topic: "other", partition: 0)))
        XCTAssertEqual(topics.topicPartition(of: TaskId(stage: .impressions, partition: 2)), TopicPartition(topic: "impressions", partition: 2))
        XCTAssertEqual(topics.subscriptionIndex(of: .items), 2)
        XCTAssertNil(topics.subscriptionIndex(of: .users), "not subscribed when the input is keyed by user")
    }

    func testTaskManagerRoutesByTopicIndexAndPartitionAndDropsCleanly() {
        let manager = TaskManager(inputs: inputs(), metrics: ProcessorStats().metrics)
        let tasks = factory()
        let item = tasks.make(TaskId(stage: .items, partition: 5), topic: "g-items-repartition", nowMs: 0)
        let source = tasks.make(TaskId(stage: .impressions, partition: 0), topic: "impressions", nowMs: 0)
        manager.insert(item)
        manager.insert(source)
        manager.epochs[item.id] = 3
        XCTAssertTrue(manager.route(topicIndex: 2, partition: 5) === item)
        XCTAssertTrue(manager.route(topicIndex: 1, partition: 0) === source)
        XCTAssertNil(manager.route(topicIndex: 2, partition: 4))
        XCTAssertNil(manager.route(topicIndex: 0, partition: 0))
        XCTAssertNil(manager.route(topicIndex: 9, partition: 0))
        XCTAssertEqual(manager.ids, [source.id, item.id], "stage order, then partition")
        XCTAssertEqual(manager.itemTasks.count, 1)
        XCTAssertEqual(manager.sourceTasks[TopicPartition(topic: "impressions", partition: 0)]?.id, source.id)

        manager.drop(item.id)
        XCTAssertNil(manager.route(topicIndex: 2, partition: 5))
        XCTAssertNil(manager.epochs[item.id])
        XCTAssertTrue(manager.itemTasks.isEmpty)
        XCTAssertEqual(manager.ids, [source.id])
    }

    // MARK: - Checkpointer

    final class FakeHost: CheckpointHost {
        struct FlushFailed: Error {}
        var steps: [String] = []
        var producerFails = false
        var fatal: String?
        var excluded: Set<TaskId> = []
        var checkpoints: [FencedWrite] = []
        var committed: [TopicPartition: Int64] = [:]

        func flushFeatures(nowMs: Int64) { steps.append("features") }
        func verifyCheckpointStore() { steps.append("verify") }
        func flushOutput() throws {
            steps.append("producer")
            if producerFails { throw FlushFailed() }
        }
        var outputFatal: String? { fatal }
        func drainWriter() -> Set<TaskId> {
            steps.append("drain")
            return excluded
        }
        func submitCheckpoints(_ writes: [FencedWrite]) {
            steps.append("checkpoint")
            checkpoints += writes
        }
        func recordDeadLetterProgress(tasks: [TaskId]) { steps.append("dead-letter floors") }
        func commitOffsetsToKafka(_ offsets: [TopicPartition: Int64]) throws {
            steps.append("commit")
            committed.merge(offsets) { $1 }
        }
    }

    /// Two source tasks at offsets 2 and 1, owned under epoch 9.
    func checkpointer(_ host: FakeHost) -> (Checkpointer, TaskManager) {
        let manager = TaskManager(inputs: inputs(), metrics: ProcessorStats().metrics)
        let output = DataflowTests.MemoryOutput(partitions: 1)
        for (partition, records) in [(Int32(0), 2), (Int32(1), 1)] {
            let task = factory().make(TaskId(stage: .interactions, partition: partition), topic: "interactions", nowMs: base)
            for offset in 0..<records {
                task.process(record(Int64(offset), interaction("u\(partition)", "i", ts: base), partition: partition), nowMs: base, output: output)
            }
            manager.insert(task)
            manager.epochs[task.id] = 9
        }
        let checkpointer = Checkpointer(keys: RedisKeys(prefix: "p:", group: "g"), tasks: manager, stats: ProcessorStats(),
                                        logger: Logger(label: "test"), host: host)
        return (checkpointer, manager)
    }

    func testCheckpointFollowsKafkaStreamsOrderAndCommitsEachTaskPosition() {
        let host = FakeHost()
        let (checkpointer, manager) = checkpointer(host)
        checkpointer.checkpointAndCommit(tasks: manager.ids, nowMs: base)
        XCTAssertEqual(host.steps, ["verify", "features", "producer", "drain", "checkpoint", "drain", "dead-letter floors", "commit"])
        XCTAssertEqual(host.checkpoints.map(\.task), manager.ids)
        XCTAssertTrue(host.checkpoints.allSatisfy { $0.isCheckpoint && $0.epoch == 9 })
        XCTAssertEqual(host.committed, [TopicPartition(topic: "interactions", partition: 0): 2,
                                        TopicPartition(topic: "interactions", partition: 1): 1])
        XCTAssertEqual(checkpointer.writtenMs[TaskId(stage: .interactions, partition: 0)], base)
    }

    func testATaskWhoseFeaturesWereRefusedIsNeitherCheckpointedNorCommitted() {
        let host = FakeHost()
        let refused = TaskId(stage: .interactions, partition: 1)
        host.excluded = [refused]
        let (checkpointer, manager) = checkpointer(host)
        checkpointer.checkpointAndCommit(tasks: manager.ids, nowMs: base)
        XCTAssertEqual(host.checkpoints.map(\.task), [TaskId(stage: .interactions, partition: 0)])
        XCTAssertEqual(host.committed, [TopicPartition(topic: "interactions", partition: 0): 2])
        XCTAssertNil(checkpointer.commitsBlocked)
    }

    func testAProducerFlushFailureSkipsTheCheckpointAndARecordNotEnqueuedBlocksCommitsForGood() {
        let host = FakeHost()
        let (checkpointer, manager) = checkpointer(host)
        host.producerFails = true
        checkpointer.checkpointAndCommit(tasks: manager.ids, nowMs: base)
        XCTAssertEqual(host.steps, ["verify", "features", "producer"])
        XCTAssertNil(checkpointer.commitsBlocked, "a failed flush is retried at the next checkpoint")

        host.producerFails = false
        host.fatal = "queue full"
        host.steps = []
        checkpointer.checkpointAndCommit(tasks: manager.ids, nowMs: base + 1)
        XCTAssertNotNil(checkpointer.commitsBlocked)
        host.fatal = nil
        host.steps = []
        checkpointer.checkpointAndCommit(tasks: manager.ids, nowMs: base + 2)
        checkpointer.commitOnly(nowMs: base + 3)
        XCTAssertEqual(host.steps, [], "nothing is checkpointed or committed once blocked")
        XCTAssertTrue(host.committed.isEmpty)
    }
}
