import Foundation
import FreshetKafka
import FreshetRedis
import Logging
import XCTest
@testable import FreshetRuntime

/// `/tasks` without servers: the JSON document's shape, the routing, and the
/// board the processing thread publishes through.
final class ObservabilityTasksTests: XCTestCase {
    static let snapshot = OwnershipSnapshot(
        group: "g", memberId: "rdkafka-1", generation: 7, memberOfGroup: true, bounded: false, publishedMs: 1_700_000_000_123,
        tasks: [
            TaskSnapshot(task: "interactions-2", stage: "interactions", topic: "interactions", partition: 2, epoch: 41,
                         position: 120, endOffset: 125, lag: 5, finished: false, watermarkMs: 1_699_999_990_000,
                         recordsProcessed: 120, lastCheckpointOffset: 100, lastCheckpointMs: 1_700_000_000_000),
            TaskSnapshot(task: "items-0", stage: "items", topic: "g-items-repartition", partition: 0, epoch: 42),
        ])

    private func object(_ json: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], json)
    }

    func testDocumentHasEveryKeyWithNullsForUnknowns() throws {
        let json = Self.snapshot.json(readiness: .notReady(["restoring 1 task(s) from checkpoints"]))
        XCTAssertTrue(json.hasSuffix("}\n"), json)
        let doc = try object(json)
        XCTAssertEqual(Set(doc.keys), ["group", "member_id", "generation", "member_of_group", "ready", "not_ready_reasons",
                                       "bounded", "published_ms", "tasks"])
        XCTAssertEqual(doc["group"] as? String, "g")
        XCTAssertEqual(doc["member_id"] as? String, "rdkafka-1")
        XCTAssertEqual(doc["generation"] as? Int, 7)
        XCTAssertEqual(doc["member_of_group"] as? Bool, true)
        XCTAssertEqual(doc["ready"] as? Bool, false)
        XCTAssertEqual(doc["not_ready_reasons"] as? [String], ["restoring 1 task(s) from checkpoints"])
        XCTAssertEqual(doc["bounded"] as? Bool, false)
        XCTAssertEqual((doc["published_ms"] as? NSNumber)?.int64Value, 1_700_000_000_123)

        let tasks = try XCTUnwrap(doc["tasks"] as? [[String: Any]])
        XCTAssertEqual(tasks.count, 2)
        let taskKeys: Set<String> = ["task", "stage", "topic", "partition", "epoch", "position", "end_offset", "lag", "finished",
                                     "watermark_ms", "records_processed", "last_checkpoint_offset", "last_checkpoint_ms", "rebuilding",
                                     "paused", "joiner_entries", "joiner_peak_entries"]
        for task in tasks { XCTAssertEqual(Set(task.keys), taskKeys, "\(task)") }

        let source = tasks[0]
        XCTAssertEqual(source["task"] as? String, "interactions-2")
        XCTAssertEqual(source["stage"] as? String, "interactions")
        XCTAssertEqual(source["topic"] as? String, "interactions")
        XCTAssertEqual(source["partition"] as? Int, 2)
        XCTAssertEqual(source["epoch"] as? Int, 41)
        XCTAssertEqual(source["position"] as? Int, 120)
        XCTAssertEqual(source["end_offset"] as? Int, 125)
        XCTAssertEqual(source["lag"] as? Int, 5)
        XCTAssertEqual(source["finished"] as? Bool, false)
        XCTAssertEqual((source["watermark_ms"] as? NSNumber)?.int64Value, 1_699_999_990_000)
        XCTAssertEqual(source["records_processed"] as? Int, 120)
        XCTAssertEqual(source["last_checkpoint_offset"] as? Int, 100)
        XCTAssertEqual((source["last_checkpoint_ms"] as? NSNumber)?.int64Value, 1_700_000_000_000)
        XCTAssertEqual(source["rebuilding"] as? Bool, false)
        XCTAssertEqual(source["paused"] as? Bool, false)

        // Unknown values are explicit nulls, so every key is always there.
        let item = tasks[1]
        for key in ["position", "end_offset", "lag", "watermark_ms", "last_checkpoint_offset", "last_checkpoint_ms",
                    "joiner_entries", "joiner_peak_entries"] {
            XCTAssertTrue(item[key] is NSNull, "\(key) of a task that read nothing is null: \(item)")
        }
        XCTAssertEqual(item["records_processed"] as? Int, 0)
    }

    func testEmptySnapshotBeforeTheFirstPublication() throws {
        let doc = try object(OwnershipSnapshot().json(readiness: .ready))
        XCTAssertEqual(doc["member_of_group"] as? Bool, false)
        XCTAssertTrue(doc["generation"] is NSNull)
        XCTAssertEqual(doc["ready"] as? Bool, true)
        XCTAssertEqual(doc["not_ready_reasons"] as? [String], [])
        XCTAssertEqual((doc["tasks"] as? [Any])?.count, 0)
    }

    func testRoutesTasksAsJSONAndAnswers404WithoutIt() throws {
        let head = Array("GET /tasks HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let json = Self.snapshot.json(readiness: .ready)
        let with = try AdminServer(metrics: { "" }, tasks: { json })
        let answer = with.respond(toHead: head)
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.contentType, "application/json")
        XCTAssertEqual(answer.body, json)
        let query = with.respond(toHead: Array("GET /tasks?pretty HTTP/1.1\r\n\r\n".utf8))
        XCTAssertEqual(query.status, 200, "a query string is ignored")

        let without = try AdminServer(metrics: { "" })
        XCTAssertEqual(without.respond(toHead: head).status, 404)
    }

    func testBoardKeepsTalliesOfOwnedTasksOnly() {
        let board = TaskBoard()
        board.addProcessed(key: 2 << 32 | 0, count: 10)
        board.addProcessed(key: 2 << 32 | 0, count: 5)
        board.addProcessed(key: 0 << 32 | 1, count: 3)
        board.addProcessed(key: 0 << 32 | 1, count: 0)
        board.checkpointed(task: "items-0", offset: 15, atMs: 1_000)
        board.checkpointed(task: "items-0", offset: 20, atMs: 2_000)
        board.checkpointed(task: "interactions-1", offset: 3, atMs: 1_500)

        var tallies = board.tallies(keepingKeys: [2 << 32 | 0, 0 << 32 | 1], tasks: ["items-0", "interactions-1"])
        XCTAssertEqual(tallies.processed, [2 << 32 | 0: 15, 0 << 32 | 1: 3])
        XCTAssertEqual(tallies.checkpoints["items-0"], TaskBoard.Checkpoint(offset: 20, atMs: 2_000))

        // interactions-1 revoked: its tallies go; taken again, it counts from zero.
        tallies = board.tallies(keepingKeys: [2 << 32 | 0], tasks: ["items-0"])
        XCTAssertEqual(tallies.processed, [2 << 32 | 0: 15])
        XCTAssertNil(tallies.checkpoints["interactions-1"])
        board.addProcessed(key: 0 << 32 | 1, count: 1)
        XCTAssertEqual(board.tallies(keepingKeys: [0 << 32 | 1], tasks: []).processed, [0 << 32 | 1: 1])

        board.publish(Self.snapshot)
        XCTAssertEqual(board.snapshot, Self.snapshot)
    }

    /// The processing thread's publication, from task state set by hand (no
    /// broker, no Redis): ids, epochs, positions, bounded-run completion,
    /// watermarks, the read and checkpoint tallies of owned tasks only.
    func testPublisherDescribesTheOwnedTasks() throws {
        var topology = Topology()
        topology.admin.port = -1
        let processor = StreamProcessor(topology: topology,
                                        options: ProcessorOptions(brokers: "unused:9092", redis: try RedisEndpoint(url: "redis://127.0.0.1:1"),
                                                                  group: "g", stopAtEnd: true),
                                        logger: Logger(label: "test"))
        processor.interactionPartitions = 2
        processor.impressionPartitions = 2
        processor.taskManager.inputs = InputTopics(topics: [(.interactions, "interactions"), (.impressions, "impressions"),
                                                            (.items, processor.itemTopic), (.counts, processor.countsTopic)],
                                                   subscribe: [.interactions, .impressions, .items, .counts])

        let source = SourceTask(id: TaskId(stage: .interactions, partition: 1), topic: "interactions", decoder: processor.decoder,
                                outOfOrdernessMs: 5_000, keepsUserFeatures: true)
        source.nextOffset = 42
        source.restoreWatermark(maxTimestamp: 1_000_000)
        source.finish(output: DataflowTests.MemoryOutput(partitions: 1))
        processor.taskManager.insert(source)
        processor.taskManager.epochs[source.id] = 7
        let item = try XCTUnwrap(processor.taskFactory.make(TaskId(stage: .items, partition: 0), topic: processor.itemTopic,
                                                            nowMs: 0) as? ItemTask)
        item.nextOffset = 5
        processor.taskManager.insert(item)
        processor.taskManager.epochs[item.id] = 8
        processor.rebuildingTasks[item.id] = 100
        // The default topology joins the examples in the counts stage: its tasks report the join's entries.
        let counts = try XCTUnwrap(processor.taskFactory.make(TaskId(stage: .counts, partition: 0), topic: processor.countsTopic,
                                                              nowMs: 0) as? CountTask)
        processor.taskManager.insert(counts)
        processor.taskManager.epochs[counts.id] = 9
        processor.memberOfGroup = true

        processor.stats.tasks.addProcessed(key: 0 << 32 | 1, count: 40)
        processor.stats.tasks.addProcessed(key: 0 << 32 | 3, count: 9)  // interactions-3: not owned
        processor.stats.tasks.checkpointed(task: "interactions-1", offset: 40, atMs: 123)
        processor.publishTasks(nowMs: 1_000)

        let snapshot = processor.stats.tasks.snapshot
        XCTAssertEqual(snapshot.group, "g")
        XCTAssertTrue(snapshot.memberOfGroup)
        XCTAssertTrue(snapshot.bounded)
        XCTAssertEqual(snapshot.publishedMs, 1_000)
        XCTAssertEqual(snapshot.tasks, [
            TaskSnapshot(task: "counts-0", stage: "counts", topic: processor.countsTopic, partition: 0, epoch: 9,
                         joinerEntries: 0, joinerPeakEntries: 0),
            TaskSnapshot(task: "interactions-1", stage: "interactions", topic: "interactions", partition: 1, epoch: 7,
                         position: 42, endOffset: nil, lag: nil, finished: true, watermarkMs: 995_000,
                         recordsProcessed: 40, lastCheckpointOffset: 40, lastCheckpointMs: 123),
            TaskSnapshot(task: "items-0", stage: "items", topic: processor.itemTopic, partition: 0, epoch: 8,
                         position: 5, finished: false, rebuilding: true),
        ])
        XCTAssertEqual(processor.stats.tasks.tallies(keepingKeys: [0 << 32 | 3], tasks: []).processed, [:],
                       "the tally of a task not owned was dropped at publication")
    }
}
