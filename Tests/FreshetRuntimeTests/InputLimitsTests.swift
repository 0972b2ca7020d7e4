import FreshetCore
@testable import FreshetRuntime
import XCTest

/// Output size limits, sub-index width in checkpoints, topology keys and the
/// features reader (issue 8, parts 3 and 6), without Kafka.
final class InputLimitsTests: XCTestCase {
    final class SmallOutput: TaskOutput {
        var maxRepartitionRecordBytes: Int
        var routed: [(String, [UInt8])] = []
        var deadLetters: [(InputRecord, BadInput)] = []
        init(max: Int) { maxRepartitionRecordBytes = max }
        func repartition(_ target: RepartitionTarget, key: String, value: [UInt8]) { routed.append((key, value)) }
        func broadcast(_ target: RepartitionTarget, value: [UInt8]) {}
        func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput) { deadLetters.append((record, reason)) }
    }

    func testAnItemEventTooLargeForAnyMessageDeadLettersItsSourceAndTheRestIsRouted() throws {
        let task = SourceTask(id: TaskId(stage: .impressions, partition: 0), topic: "impressions", decoder: EventDecoder(),
                              outOfOrdernessMs: 5_000, keepsUserFeatures: true)
        let output = SmallOutput(max: 200)
        let big = String(repeating: "b", count: 300)
        let json = #"{"user_id":"u","items_shown":["a","\#(big)","c"],"ts":1732700000000}"#
        task.process(InputRecord(partition: 0, offset: 7, key: nil, value: Array(json.utf8), timestampMs: nil),
                     nowMs: 1732700000000, output: output)
        XCTAssertEqual(output.routed.map(\.0), ["a", "c"])
        let decoded = try output.routed.map { try RepartitionRecord.decode($0.1) }
        guard case .item(_, let last) = decoded[1] else { return XCTFail("item record expected") }
        XCTAssertEqual(last.subIndex, 2, "sub-indices keep their places")
        XCTAssertEqual(output.deadLetters.count, 1)
        XCTAssertEqual(output.deadLetters.first?.1.reason, .recordTooLarge)
        XCTAssertEqual(output.deadLetters.first?.0.offset, 7)
    }

    /// A positive whose user history (long item ids) makes its item event
    /// larger than a message goes with the newest history items that fit,
    /// or none: the item's counts take it, nothing is dead-lettered. Before,
    /// the whole interaction was dead-lettered as `record_too_large` and its
    /// item's popularity lost (a breaker's finding, with 12 KB item ids).
    func testAPositiveWhoseHistoryDoesNotFitGoesWithAShorterOne() throws {
        var settings = Topology.Embeddings()
        settings.history = 10
        let task = SourceTask(id: TaskId(stage: .interactions, partition: 0), topic: "interactions", decoder: EventDecoder(),
                              outOfOrdernessMs: 5_000, keepsUserFeatures: true)
        task.userEmbeddings = UserEmbeddingSide(settings: settings)
        let output = SmallOutput(max: 1_000)
        let ts: Int64 = 1_732_700_000_000
        let long = (0..<3).map { "L\($0)" + String(repeating: "l", count: 400) }
        let clicks = long + ["s1", "s2"]
        for (offset, item) in clicks.enumerated() {
            let json = #"{"user_id":"u","item_id":"\#(item)","action":"click","ts":\#(ts + Int64(offset))}"#
            task.process(InputRecord(partition: 0, offset: Int64(offset), key: nil, value: Array(json.utf8), timestampMs: nil),
                         nowMs: ts, output: output)
        }
        XCTAssertEqual(output.deadLetters.map(\.1.detail), [], "no positive dead-lettered")
        var histories: [String: [String]] = [:]
        for (key, bytes) in output.routed {
            guard case .item(let event, _) = try RepartitionRecord.decode(bytes) else { continue }
            XCTAssertLessThanOrEqual(bytes.count, 1_000)
            histories[key] = event.userHistory
        }
        XCTAssertEqual(Set(histories.keys), Set(clicks), "every positive reaches its item")
        // Two 400-byte ids fit in 1,000 bytes, three do not (the item's own id counts too).
        XCTAssertEqual(histories[long[1]], [long[0]], "the whole history fits")
        XCTAssertEqual(histories[long[2]], [long[1]], "the newest item of two")
        XCTAssertEqual(histories["s1"], [long[2], long[1]], "the newest two of three")
        XCTAssertEqual(histories["s2"], ["s1", long[2], long[1]], "newest first, the oldest left out")
        XCTAssertEqual(task.historiesShortened, 3)
    }

    func testTombstoneIsDeadLetteredAsNull() {
        let task = SourceTask(id: TaskId(stage: .interactions, partition: 0), topic: "interactions", decoder: EventDecoder(),
                              outOfOrdernessMs: 5_000, keepsUserFeatures: true)
        let output = SmallOutput(max: .max)
        task.process(InputRecord(partition: 0, offset: 0, key: nil, value: [], timestampMs: nil, valueIsNull: true),
                     nowMs: 1732700000000, output: output)
        XCTAssertEqual(output.deadLetters.first?.1.reason, .nullValue)
        let letter = KafkaTaskOutput.deadLetter(sourceTopic: "interactions", record: output.deadLetters[0].0,
                                                reason: output.deadLetters[0].1, budget: 1_000)
        XCTAssertNil(letter.value)
    }

    func testDeadLetterTruncationFitsTheBudgetAndSaysSo() {
        let record = InputRecord(partition: 3, offset: 42, key: Array(repeating: 1, count: 100),
                                 value: Array(repeating: 7, count: 50_000), timestampMs: nil)
        let reason = BadInput(.malformedJSON, "x")
        let small = KafkaTaskOutput.deadLetter(sourceTopic: "interactions", record: record, reason: reason, budget: 100_000)
        XCTAssertEqual(small.value?.count, 50_000, "fits: untouched")
        XCTAssertNil(small.headers.first { $0.0 == "freshet.value.truncated" })
        let cut = KafkaTaskOutput.deadLetter(sourceTopic: "interactions", record: record, reason: reason, budget: 10_000)
        let size = (cut.key?.count ?? 0) + (cut.value?.count ?? 0) + cut.headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.count }
        XCTAssertLessThanOrEqual(size, 10_000)
        XCTAssertGreaterThan(cut.value?.count ?? 0, 9_000)
        XCTAssertEqual(cut.key?.count, 100)
        XCTAssertEqual(cut.headers.first { $0.0 == "freshet.value.truncated" }?.1, Array("50000".utf8))
        XCTAssertEqual(cut.headers.first { $0.0 == "freshet.source.offset" }?.1, Array("42".utf8))
        // A key larger than the budget is cut too.
        let hugeKey = InputRecord(partition: 0, offset: 0, key: Array(repeating: 1, count: 20_000), value: [1], timestampMs: nil)
        let both = KafkaTaskOutput.deadLetter(sourceTopic: "t", record: hugeKey, reason: reason, budget: 10_000)
        let bothSize = (both.key?.count ?? 0) + (both.value?.count ?? 0) + both.headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.count }
        XCTAssertLessThanOrEqual(bothSize, 10_000)
        XCTAssertEqual(both.headers.first { $0.0 == "freshet.key.truncated" }?.1, Array("20000".utf8))
    }

    func testCheckpointKeepsSubIndicesPastSixteenBits() throws {
        var checkpoint = TaskCheckpoint()
        let source = DuplicateFilter.Source(topic: 1, partition: 2)
        checkpoint.sources = [.init(source: source, lastAdmitted: .init(offset: 9, subIndex: 70_000), watermarkMs: nil)]
        let parsed = try TaskCheckpoint.parse(Dictionary(uniqueKeysWithValues: checkpoint.fields()), task: TaskId(stage: .items, partition: 0))
        XCTAssertEqual(parsed.sources.first?.lastAdmitted?.subIndex, 70_000)
        var filter = DuplicateFilter()
        XCTAssertTrue(filter.admit(RecordOrigin(sourceTopic: 1, partition: 2, offset: 9, subIndex: 65_535)))
        XCTAssertTrue(filter.admit(RecordOrigin(sourceTopic: 1, partition: 2, offset: 9, subIndex: 65_536)),
                      "the 65,537th item of one impression is new, not a duplicate")
    }

    /// The filter remembers the previous record's source (records come in
    /// runs); interleaved sources, restores and new sources keep exact per-source answers.
    func testDuplicateFilterAcrossInterleavedSources() {
        var filter = DuplicateFilter()
        let a = { (offset: Int64, sub: UInt32) in RecordOrigin(sourceTopic: 0, partition: 1, offset: offset, subIndex: sub) }
        let b = { (offset: Int64, sub: UInt32) in RecordOrigin(sourceTopic: 1, partition: 1, offset: offset, subIndex: sub) }
        XCTAssertTrue(filter.admit(a(5, 0)))
        XCTAssertTrue(filter.admit(a(5, 1)))
        XCTAssertFalse(filter.admit(a(5, 1)))
        XCTAssertTrue(filter.admit(b(2, 0)))
        XCTAssertFalse(filter.admit(a(4, 9)), "a's highest is still (5, 1) after b's records")
        XCTAssertTrue(filter.admit(a(6, 0)))
        XCTAssertFalse(filter.admit(b(1, 0)))
        filter.restore(.init(topic: 1, partition: 1), .init(offset: 10, subIndex: 0))
        XCTAssertFalse(filter.admit(b(3, 0)), "a restore moves the source's position")
        filter.restore(.init(topic: 0, partition: 7), .init(offset: 1, subIndex: 0))
        XCTAssertFalse(filter.admit(RecordOrigin(sourceTopic: 0, partition: 7, offset: 1, subIndex: 0)))
        XCTAssertEqual(filter.highest, [.init(topic: 0, partition: 1): .init(offset: 6, subIndex: 0),
                                        .init(topic: 1, partition: 1): .init(offset: 10, subIndex: 0),
                                        .init(topic: 0, partition: 7): .init(offset: 1, subIndex: 0)])
        var reordered = DuplicateFilter()
        reordered.restore(.init(topic: 0, partition: 7), .init(offset: 1, subIndex: 0))
        reordered.restore(.init(topic: 1, partition: 1), .init(offset: 10, subIndex: 0))
        reordered.restore(.init(topic: 0, partition: 1), .init(offset: 6, subIndex: 0))
        XCTAssertEqual(filter, reordered, "equality ignores the order sources were first seen in")
    }

    /// Random runs of records from a few sources, repeats and restores,
    /// against a dictionary of highest positions: every answer and the
    /// checkpointed positions agree (the current run's position lives
    /// outside the arrays until the source changes).
    func testDuplicateFilterMatchesAModelOfHighestPositions() {
        var rng = SplitMix64(seed: 3)
        var filter = DuplicateFilter()
        var model: [DuplicateFilter.Source: DuplicateFilter.Position] = [:]
        var source = DuplicateFilter.Source(topic: 0, partition: 0)
        for step in 0..<20_000 {
            if rng.next() % 8 == 0 {
                source = DuplicateFilter.Source(topic: UInt8(rng.next() % 2), partition: Int32(rng.next() % 3))
            }
            let position = DuplicateFilter.Position(offset: Int64(step / 4) - Int64(rng.next() % 6), subIndex: UInt32(rng.next() % 3))
            if rng.next() % 500 == 0 {
                filter.restore(source, position)
                model[source] = position
                continue
            }
            let expected = model[source].map { position > $0 } ?? true
            if expected { model[source] = position }
            let origin = RecordOrigin(sourceTopic: source.topic, partition: source.partition, offset: position.offset,
                                      subIndex: position.subIndex)
            XCTAssertEqual(filter.admit(origin), expected, "step \(step)")
            if step % 997 == 0 { XCTAssertEqual(filter.highest, model, "step \(step)") }
        }
        XCTAssertEqual(filter.highest, model)
    }

    func testTopologyKeys() throws {
        let topology = try TopologyLoader.parse(yaml: """
            event_time:
              min_timestamp: 1998-01-01
            output:
              max_message_bytes: 900000
            """)
        XCTAssertEqual(topology.eventTime.minTimestampMs, 883_612_800_000)
        XCTAssertEqual(topology.output.maxMessageBytes, 900_000)
        XCTAssertEqual(Topology().eventTime.minTimestampMs, 946_684_800_000, "default 2000-01-01")
        XCTAssertEqual(try TopologyLoader.parse(yaml: "event_time:\n  min_timestamp: 1998-01-01T12:30:00Z").eventTime.minTimestampMs,
                       883_657_800_000)
        XCTAssertEqual(try TopologyLoader.parse(yaml: "event_time:\n  min_timestamp: 0").eventTime.minTimestampMs, 0)
        XCTAssertThrowsError(try TopologyLoader.parse(yaml: "event_time:\n  min_timestamp: 1998-02-30"))
        XCTAssertThrowsError(try TopologyLoader.parse(yaml: "output:\n  max_message_bytes: 10"))
    }

    func testOnlyEmbeddingVectorFieldsRenderAsFloats() {
        XCTAssertTrue(FeatureReader.isEmbeddingVectorField("embedding_128d"))
        XCTAssertTrue(FeatureReader.isEmbeddingVectorField("embedding_4d"))
        XCTAssertFalse(FeatureReader.isEmbeddingVectorField("embedding_kind"))
        XCTAssertFalse(FeatureReader.isEmbeddingVectorField("embedding_d"))
        XCTAssertFalse(FeatureReader.isEmbeddingVectorField("updated_ms"))
    }
}
