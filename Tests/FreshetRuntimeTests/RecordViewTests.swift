import FreshetCore
import FreshetFeatures
@testable import FreshetRuntime
import XCTest

/// The engine hands tasks views into the consumer's messages (`RecordView`),
/// valid only during `process`: every task kind must end up in the state it
/// reaches from owned copies, and whatever a task keeps (a dead letter) must
/// be a copy that survives the message's buffer being reused.
final class RecordViewTests: XCTestCase {
    let base: Int64 = 1_767_225_600_000  // 2026-01-01T00:00Z

    func factory(keyedByUser: Bool) -> TaskFactory {
        var topology = Topology()
        topology.sources.keyedByUser = keyedByUser
        topology.embeddings.examples = false
        return TaskFactory(topology: topology, stopAtEnd: false, decoder: EventDecoder(), panes: PaneSpec(),
                           trending: TrendingDecay(), interactionPartitions: 1, impressionPartitions: 1,
                           repartitionPartitions: 1, makeUserEmbeddingSide: { nil }, makeItemEmbeddingSide: { nil })
    }

    /// Feeds `record` as a view over a scratch buffer, then overwrites the
    /// buffer (as librdkafka frees or reuses a message's memory).
    func processBorrowed(_ task: any StreamTask, _ record: InputRecord, output: TaskOutput) {
        var value = record.value
        var key = record.key ?? []
        let hasKey = record.key != nil
        value.withUnsafeMutableBytes { valueBytes in
            key.withUnsafeMutableBytes { keyBytes in
                let view = RecordView(partition: record.partition, offset: record.offset,
                                      key: hasKey ? UnsafeRawBufferPointer(keyBytes) : nil,
                                      value: UnsafeRawBufferPointer(valueBytes), timestampMs: record.timestampMs,
                                      valueIsNull: record.valueIsNull)
                task.process(view, nowMs: base, output: output)
                for k in valueBytes.indices { valueBytes[k] = 0xEE }
                for k in keyBytes.indices { keyBytes[k] = 0xEE }
            }
        }
    }

    func interaction(_ user: String, _ item: String, ts: Int64) -> [UInt8] {
        Array(#"{"user_id":"\#(user)","item_id":"\#(item)","action":"click","ts":\#(ts)}"#.utf8)
    }

    func testEveryTaskKindReachesTheSameStateFromViewsAsFromCopies() {
        let records = [
            InputRecord(partition: 0, offset: 0, key: Array("u1".utf8), value: interaction("u1", "i1", ts: base), timestampMs: nil),
            InputRecord(partition: 0, offset: 1, key: nil, value: interaction("u2", "i1", ts: base + 1), timestampMs: 5),
            InputRecord(partition: 0, offset: 2, key: nil, value: interaction("u1", "i2", ts: base + 2), timestampMs: nil),
        ]
        for keyedByUser in [true, false] {
            let copies = DataflowTests.MemoryOutput(partitions: 1)
            let views = DataflowTests.MemoryOutput(partitions: 1)
            let tasks = factory(keyedByUser: keyedByUser)
            let id = TaskId(stage: .interactions, partition: 0)
            let fromCopies = tasks.make(id, topic: "interactions", nowMs: base)
            let fromViews = tasks.make(id, topic: "interactions", nowMs: base)
            for record in records {
                fromCopies.process(record, nowMs: base, output: copies)
                processBorrowed(fromViews, record, output: views)
            }
            XCTAssertEqual(fromViews.nextOffset, 3)
            XCTAssertEqual(views.items[0].map(\.value), copies.items[0].map(\.value), "routed item events")
            XCTAssertEqual(views.users[0].map(\.value), copies.users[0].map(\.value), "re-keyed interactions")
            if keyedByUser {
                XCTAssertEqual((fromViews as? SourceTask)?.users?.features(of: "u1"),
                               (fromCopies as? SourceTask)?.users?.features(of: "u1"))
            } else {
                // User tasks take views through the contract's default (a copy, then `process`).
                let userId = TaskId(stage: .users, partition: 0)
                let userCopies = tasks.make(userId, topic: "g-users-repartition", nowMs: base)
                let userViews = tasks.make(userId, topic: "g-users-repartition", nowMs: base)
                for record in copies.users[0] {
                    userCopies.process(record, nowMs: base, output: copies)
                    processBorrowed(userViews, record, output: views)
                }
                XCTAssertEqual((userViews as? UserTask)?.users.features(of: "u1")?.recentItems, ["i2", "i1"])
                XCTAssertEqual((userViews as? UserTask)?.users.features(of: "u1"),
                               (userCopies as? UserTask)?.users.features(of: "u1"))
                XCTAssertEqual(userViews.nextOffset, userCopies.nextOffset)
            }
            let itemId = TaskId(stage: .items, partition: 0)
            let itemCopies = tasks.make(itemId, topic: "g-items-repartition", nowMs: base)
            let itemViews = tasks.make(itemId, topic: "g-items-repartition", nowMs: base)
            for record in copies.items[0] {
                itemCopies.process(record, nowMs: base, output: copies)
                processBorrowed(itemViews, record, output: views)
            }
            XCTAssertEqual((itemViews as? ItemTask)?.store.features(of: "i1"), (itemCopies as? ItemTask)?.store.features(of: "i1"))
            XCTAssertEqual((itemViews as? ItemTask)?.store.features(of: "i2"), (itemCopies as? ItemTask)?.store.features(of: "i2"))
            XCTAssertEqual(itemViews.nextOffset, itemCopies.nextOffset)
        }
    }

    func testADeadLetterFromAViewKeepsTheOriginalBytesAfterTheBufferIsReused() {
        let output = DataflowTests.MemoryOutput(partitions: 1)
        let task = factory(keyedByUser: true).make(TaskId(stage: .interactions, partition: 0), topic: "interactions", nowMs: base)
        let bad = Array(#"{"user_id":"u","item_id":"i","action":"buy","ts":1767225600000}"#.utf8)
        processBorrowed(task, InputRecord(partition: 0, offset: 4, key: Array("k".utf8), value: bad, timestampMs: 9), output: output)
        processBorrowed(task, InputRecord(partition: 0, offset: 5, key: nil, value: [], timestampMs: nil, valueIsNull: true),
                        output: output)
        XCTAssertEqual(output.deadLetters.count, 2)
        let letter = output.deadLetters[0].1
        XCTAssertEqual(output.deadLetters[0].2.reason, .unknownAction)
        XCTAssertEqual(letter.value, bad)
        XCTAssertEqual(letter.key, Array("k".utf8))
        XCTAssertEqual(letter.offset, 4)
        XCTAssertEqual(letter.timestampMs, 9)
        XCTAssertEqual(output.deadLetters[1].2.reason, .nullValue)
        XCTAssertTrue(output.deadLetters[1].1.valueIsNull)
        XCTAssertNil(output.deadLetters[1].1.key)
    }

    func testAViewOfAnOwnedRecordRoundTrips() {
        for record in [InputRecord(partition: 3, offset: 42, key: [1, 0, 2], value: [7, 8], timestampMs: 11),
                       InputRecord(partition: 0, offset: 0, key: nil, value: [], timestampMs: nil, valueIsNull: true)] {
            let back = record.withView { $0.owned() }
            XCTAssertEqual(back.partition, record.partition)
            XCTAssertEqual(back.offset, record.offset)
            XCTAssertEqual(back.key, record.key)
            XCTAssertEqual(back.value, record.value)
            XCTAssertEqual(back.timestampMs, record.timestampMs)
            XCTAssertEqual(back.valueIsNull, record.valueIsNull)
        }
    }
}
