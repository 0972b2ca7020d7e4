import FreshetCore
import FreshetEmbeddings
import FreshetFeatures
@testable import FreshetRuntime
import XCTest

/// Source tasks and item tasks wired through an in-memory "repartition topic":
/// the dataflow without Kafka (Kafka Streams' TopologyTestDriver idea).
final class DataflowTests: XCTestCase {
    final class MemoryOutput: TaskOutput {
        let partitions: Int32
        var items: [[InputRecord]]
        var users: [[InputRecord]]
        var deadLetters: [(String, InputRecord, BadInput)] = []
        init(partitions: Int32) {
            self.partitions = partitions
            items = Array(repeating: [], count: Int(partitions))
            users = Array(repeating: [], count: Int(partitions))
        }
        func repartition(_ target: RepartitionTarget, key: String, value: [UInt8]) {
            let p = Int(UInt32(truncatingIfNeeded: key.hashValue & 0x7fff_ffff) % UInt32(partitions))
            append(target, p, value)
        }
        func broadcast(_ target: RepartitionTarget, value: [UInt8]) {
            for p in 0..<Int(partitions) { append(target, p, value) }
        }
        func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput) {
            deadLetters.append((sourceTopic, record, reason))
        }
        private func append(_ target: RepartitionTarget, _ p: Int, _ value: [UInt8]) {
            let record = { (list: [InputRecord]) in
                InputRecord(partition: Int32(p), offset: Int64(list.count), key: nil, value: value, timestampMs: nil)
            }
            if target == .items { items[p].append(record(items[p])) } else { users[p].append(record(users[p])) }
        }
    }

    let hour: Int64 = 3_600_000
    let base: Int64 = 1_767_225_600_000  // 2026-01-01T00:00Z

    func interaction(_ user: String, _ item: String, _ action: String = "click", ts: Int64) -> [UInt8] {
        Array(#"{"user_id":"\#(user)","item_id":"\#(item)","action":"\#(action)","ts":\#(ts)}"#.utf8)
    }

    func makeSources() -> (SourceTask, SourceTask) {
        let decoder = EventDecoder()
        let a = SourceTask(id: TaskId(stage: .interactions, partition: 0), topic: "interactions", decoder: decoder,
                           outOfOrdernessMs: 5_000, keepsUserFeatures: true)
        let b = SourceTask(id: TaskId(stage: .interactions, partition: 1), topic: "interactions", decoder: decoder,
                           outOfOrdernessMs: 5_000, keepsUserFeatures: true)
        return (a, b)
    }

    func makeItemTask(partition: Int32 = 0) -> ItemTask {
        ItemTask(id: TaskId(stage: .items, partition: partition), panes: PaneSpec(), trending: TrendingDecay(),
                 idleTimeoutMs: nil, sources: [.init(topic: 0, partition: 0), .init(topic: 0, partition: 1)], nowMs: 0)
    }

    func testItemWatermarkIsTheMinimumOverSourcesAndCountsFollowIt() {
        let output = MemoryOutput(partitions: 1)
        let (a, b) = makeSources()
        let now = base + 10 * hour
        a.process(InputRecord(partition: 0, offset: 0, key: nil, value: interaction("u1", "i1", ts: base), timestampMs: nil), nowMs: now, output: output)
        a.emitWatermarkIfAdvanced(output: output)
        let item = makeItemTask()
        for record in output.items[0] { item.process(record, nowMs: now, output: output) }
        item.advanceWatermark(nowMs: now, output: output)
        XCTAssertNil(item.currentWatermark, "source 1 has not reported: the watermark is unknown")
        XCTAssertEqual(item.store.features(of: "i1")?.popularity7d ?? 0, 0, "nothing is visible before a watermark")

        b.process(InputRecord(partition: 1, offset: 0, key: nil, value: interaction("u2", "i1", ts: base + 2 * hour), timestampMs: nil), nowMs: now, output: output)
        b.emitWatermarkIfAdvanced(output: output)
        for record in output.items[0].dropFirst(2) { item.process(record, nowMs: now, output: output) }
        item.advanceWatermark(nowMs: now, output: output)
        XCTAssertEqual(item.currentWatermark, base - 5_000, "minimum over the two sources")
        // Pane of base - 5 s is the hour before base: the event at base is ahead of the watermark.
        XCTAssertEqual(item.store.features(of: "i1")?.popularity7d, 0)
        a.process(InputRecord(partition: 0, offset: 1, key: nil, value: interaction("u1", "i2", ts: base + 3 * hour), timestampMs: nil), nowMs: now, output: output)
        a.emitWatermarkIfAdvanced(output: output)
        for record in output.items[0].dropFirst(4) { item.process(record, nowMs: now, output: output) }
        item.advanceWatermark(nowMs: now, output: output)
        XCTAssertEqual(item.currentWatermark, base + 2 * hour - 5_000)
        XCTAssertEqual(item.store.features(of: "i1")?.popularity7d, 1, "the event at base is now inside the window")
        XCTAssertEqual(a.users?.features(of: "u1")?.interactionCount, 2)
    }

    /// With the examples' counts stage, an item task evaluates each
    /// impression's item features once its watermark passes the impression
    /// and sends them to the counts stage, then its watermark: at the end of
    /// a bounded run, the features of what still waits, then its final
    /// marker at the sources' final watermark (the counts stage's join ends
    /// there, and takes every impression as complete).
    func testAnItemTaskSendsTheCountsStageTheFeaturesThenItsFinalMarker() throws {
        let output = MemoryOutput(partitions: 1)
        let (a, b) = makeSources()
        let now = base + 10 * hour
        a.process(InputRecord(partition: 0, offset: 0, key: nil, value: interaction("u1", "i9", ts: base + hour - 1), timestampMs: nil), nowMs: now, output: output)
        b.process(InputRecord(partition: 1, offset: 0, key: nil, value: interaction("u2", "i2", ts: base + 3 * hour), timestampMs: nil), nowMs: now, output: output)
        let item = makeItemTask()
        let side = ItemEmbeddingSide(settings: Topology().embeddings, counts: InteractionCountView())
        side.sendFeaturesToCounts(fromPartition: 0)
        item.embeddings = side
        for record in output.items[0] { item.process(record, nowMs: now, output: output) }
        // An impression of i9 an hour in, ahead of interactions-0's watermark (base + 1 h − 5 s).
        let impression = ItemEvent(itemId: "i9", userId: "u1", ts: base + hour, kind: .impression(position: 4), requestId: "r")
        let record = RepartitionRecord.item(impression, origin: RecordOrigin(sourceTopic: 1, partition: 0, offset: 7, subIndex: 2))
        var bundle: [UInt8] = []
        RecordBundle.append(record.encoded(), to: &bundle)
        item.process(InputRecord(partition: 0, offset: Int64(output.items[0].count), key: nil, value: bundle, timestampMs: nil),
                     nowMs: now, output: output)
        item.advanceTime(TimeTick(nowMs: now, markersDue: true, finalMarkersDue: false), output: output)
        XCTAssertEqual(side.pending.waitingCount, 1, "ahead of the watermark: waiting")
        a.finish(output: output)
        b.finish(output: output)
        for record in output.items[0].dropFirst(2) { item.process(record, nowMs: now, output: output) }
        item.advanceTime(TimeTick(nowMs: now, markersDue: true, finalMarkersDue: false), output: output)
        XCTAssertTrue(item.atEnd, "every input finished, the final marker sent")
        XCTAssertEqual(item.currentWatermark, base + hour - 5_001, "interactions-0's, behind the impression: evaluated at the end")
        XCTAssertEqual(side.pending.waitingCount, 0)
        let sent = try output.users[0].map { record in
            try record.value.withUnsafeBytes { raw throws(CodecError) in try CountStageRecord.decode(raw) }
        }
        let part = ImpressionFeaturesPart(
            senderPartition: 0, userId: "u1", ts: base + hour, requestId: "r",
            source: RecordOrigin(sourceTopic: 1, partition: 0, offset: 7), knownFrom: base + hour,
            items: [ImpressionFeaturesPart.Item(index: 2, itemId: "i9", position: 4, popularity7d: 1, impressions7d: 1)])
        guard let code = TaskId.Stage.items.originCode else { return XCTFail("the items stage has an origin code") }
        XCTAssertEqual(sent.last, .watermark(WatermarkMarker(sourceTopic: code, sourcePartition: 0,
                                                             watermarkMs: base + hour - 5_001, finished: true)))
        XCTAssertEqual(sent.filter { if case .impressionFeatures = $0 { true } else { false } }, [.impressionFeatures(part)],
                       "the click before it counted, the impression itself too")
    }

    /// `trending:meta` carries the watermark the scores are read as of. The
    /// last changed item can be rendered before the watermark's last move
    /// (a bounded run's final markers come after its last records, in a
    /// later flush): the meta must still reach the final watermark. (Seen in
    /// CI: `AlignmentTests` found it at the last regular event's watermark,
    /// 2 h before the clock events' final one.)
    func testTrendingMetaFollowsTheWatermarkAfterTheLastChangedItem() {
        let output = MemoryOutput(partitions: 1)
        let (a, b) = makeSources()
        let now = base + 10 * hour
        a.process(InputRecord(partition: 0, offset: 0, key: nil, value: interaction("u1", "i1", ts: base), timestampMs: nil), nowMs: now, output: output)
        b.process(InputRecord(partition: 1, offset: 0, key: nil, value: interaction("u2", "i2", ts: base), timestampMs: nil), nowMs: now, output: output)
        let item = makeItemTask()
        for record in output.items[0] { item.process(record, nowMs: now, output: output) }
        /// Both sources' markers at `watermark` (no item for this task).
        func markers(_ watermark: EventTimeMs, finished: Bool) {
            var bundle: [UInt8] = []
            for partition: Int32 in [0, 1] {
                let marker = WatermarkMarker(sourceTopic: 0, sourcePartition: partition, watermarkMs: watermark, finished: finished)
                RecordBundle.append(RepartitionRecord.watermark(marker).encoded(), to: &bundle)
            }
            item.process(InputRecord(partition: 0, offset: item.nextOffset ?? 0, key: nil, value: bundle, timestampMs: nil),
                         nowMs: now, output: output)
            item.advanceWatermark(nowMs: now, output: output)
        }
        markers(base + hour, finished: false)
        let keys = RedisKeys(prefix: "", group: "g")
        let renderer = FeatureRenderer(keys: keys, trendingTopK: 10, trending: TrendingDecay(), halfLifeMs: hour)
        /// Renders the task; returns the operations and the `watermark_ms` written into `trending:meta`.
        func render() -> (operations: [String], metaWatermark: String?) {
            var write = FencedWrite(task: item.id, epochKey: keys.epoch(item.id), epoch: 1)
            var context = RenderContext(renderer: renderer, vectors: nil, embeddings: nil)
            item.render(into: &write, context: &context)
            let text = write.operations.map { String(decoding: $0, as: UTF8.self) }
            guard text.contains(keys.trendingMeta), let field = text.firstIndex(of: "watermark_ms"), field + 1 < text.count else {
                return (text, nil)
            }
            return (text, text[field + 1])
        }
        XCTAssertEqual(render().metaWatermark, String(base + hour), "written with the changed items")
        XCTAssertEqual(item.store.features(of: "i1")?.popularity7d, 1, "the events' pane is visible")
        XCTAssertEqual(render().operations, [], "nothing changed, the watermark did not move: nothing to write")

        // The final markers, two hours on: no item's features change.
        markers(base + 3 * hour, finished: true)
        XCTAssertEqual(item.currentWatermark, base + 3 * hour)
        let final = render()
        XCTAssertFalse(final.operations.contains(keys.item("i1")), "i1 did not change")
        XCTAssertEqual(final.metaWatermark, String(base + 3 * hour), "the final watermark reaches trending:meta")
    }

    func testRecordsProducedTwiceAfterACrashAreCountedOnce() {
        let output = MemoryOutput(partitions: 1)
        let (a, b) = makeSources()
        let now = base + 10 * hour
        for offset in 0..<5 {
            a.process(InputRecord(partition: 0, offset: Int64(offset), key: nil, value: interaction("u\(offset)", "i1", ts: base + Int64(offset)), timestampMs: nil), nowMs: now, output: output)
        }
        // The source task crashes after offset 4 and replays from a checkpoint at offset 2.
        let (replay, _) = makeSources()
        for offset in 2..<7 {
            replay.process(InputRecord(partition: 0, offset: Int64(offset), key: nil, value: interaction("u\(offset)", "i1", ts: base + Int64(offset)), timestampMs: nil), nowMs: now, output: output)
        }
        replay.process(InputRecord(partition: 0, offset: 7, key: nil, value: interaction("late", "i2", ts: base + 2 * hour), timestampMs: nil), nowMs: now, output: output)
        b.process(InputRecord(partition: 1, offset: 0, key: nil, value: interaction("x", "i9", ts: base + hour * 5), timestampMs: nil), nowMs: now, output: output)
        replay.emitWatermarkIfAdvanced(output: output)
        b.emitWatermarkIfAdvanced(output: output)
        let item = makeItemTask()
        for record in output.items[0] { item.process(record, nowMs: now, output: output) }
        item.advanceWatermark(nowMs: now, output: output)
        XCTAssertEqual(item.duplicatesDropped, 3, "offsets 2, 3, 4 arrived twice")
        XCTAssertEqual(item.store.features(of: "i1")?.popularity7d, 7, "offsets 0...6, each once")
    }

    func testBadInputIsDeadLetteredWithItsReasonAndProcessingContinues() {
        let output = MemoryOutput(partitions: 1)
        let (a, _) = makeSources()
        let bad: [[UInt8]] = [Array("not json".utf8), [0xff, 0xfe], Array("[1,2]".utf8),
                              Array(#"{"user_id":"u","item_id":"i","action":"buy","ts":1767225600000}"#.utf8)]
        for (offset, value) in bad.enumerated() {
            a.process(InputRecord(partition: 0, offset: Int64(offset), key: nil, value: value, timestampMs: nil), nowMs: base, output: output)
        }
        a.process(InputRecord(partition: 0, offset: 9, key: nil, value: interaction("u1", "i1", ts: base), timestampMs: nil), nowMs: base, output: output)
        XCTAssertEqual(output.deadLetters.map(\.2.reason), [.malformedJSON, .invalidUTF8, .notAnObject, .unknownAction])
        XCTAssertEqual(output.deadLetters.map(\.1.offset), [0, 1, 2, 3])
        XCTAssertEqual(a.users?.features(of: "u1")?.interactionCount, 1)
        XCTAssertEqual(a.nextOffset, 10)
    }

    func testRendererWritesAbsoluteValuesOfChangedKeysOnly() {
        let store = UserFeatureStore()
        store.apply(Interaction(userId: "u1", itemId: "i1", action: .click, dwellMs: nil, ts: base, requestId: nil))
        let renderer = FeatureRenderer(keys: RedisKeys(prefix: "p:", group: "g"), trendingTopK: 10, trending: TrendingDecay(),
                                       halfLifeMs: hour)
        var write = FencedWrite(task: TaskId(stage: .interactions, partition: 0), epochKey: "e", epoch: 1)
        var samples: [Int64] = []
        var counts: [(String, Int64)] = []
        XCTAssertEqual(renderer.renderUsers(store, into: &write, samples: &samples, counts: &counts), 1)
        let text = write.operations.map { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(text, ["H", "p:user:u1", "3", "recent_items_50", #"["i1"]"#, "interaction_count", "1", "updated_ms", "\(base)"])
        var second = FencedWrite(task: TaskId(stage: .interactions, partition: 0), epochKey: "e", epoch: 1)
        XCTAssertEqual(renderer.renderUsers(store, into: &second, samples: &samples, counts: &counts), 0, "nothing changed since the last flush")
        XCTAssertTrue(second.isEmpty)
    }
}
