import FreshetCore
import FreshetEmbeddings
import FreshetKafka
@testable import FreshetRuntime
import XCTest

/// Checkpoints of the release that joined the examples in the item tasks
/// (the counts stage sent them copies) hold join state this release cannot
/// take over: a start on them is refused with the way out, unless that
/// state is empty (a finished bounded run), which is taken over as before.
final class RetiredJoinStateTests: XCTestCase {
    let hour: Int64 = 3_600_000

    func testARetiredJoinFieldCountsOnlyWhenItHoldsEntries() throws {
        var checkpoint = TaskCheckpoint()
        checkpoint.nextOffset = 5
        var fields = checkpoint.fields()
        fields.append(("join_held", [1, 0]))
        fields.append(("join_features", [1, 0]))
        XCTAssertEqual(try parse(fields).retiredJoinFields, [], "empty: a format byte and a count of 0")
        fields.removeLast()
        fields.append(("join_features", [1, 2, 9, 9, 9]))
        XCTAssertEqual(try parse(fields).retiredJoinFields, ["join_features"])
    }

    /// A counts entry of version 2 with an impression held (its items' ids
    /// only, the features left in the earlier release's item tasks) is
    /// refused; one holding only its timeline is taken over.
    func testACountsEntryOfTheEarlierLayoutIsTakenOverOnlyWithoutHeldImpressions() throws {
        let timelines = CountTimelines(retentionMs: hour)
        try timelines.restoreEntry(userId: "u1", bytes: versionTwoEntry(heldImpression: false))
        XCTAssertEqual(timelines.count(userId: "u1", asOf: 2_000), 7)
        XCTAssertThrowsError(try timelines.restoreEntry(userId: "u2", bytes: versionTwoEntry(heldImpression: true))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("user u2") && text.contains("start a new group"), text)
        }
    }

    private func parse(_ fields: [(String, [UInt8])]) throws -> TaskCheckpoint {
        try TaskCheckpoint.parse(Dictionary(fields, uniquingKeysWith: { $1 }), task: TaskId(stage: .items, partition: 0))
    }

    /// The earlier release's `CountTimelines` entry: version 2, total 7, one
    /// positive at 1,000, then (optionally) one held impression of two items.
    private func versionTwoEntry(heldImpression: Bool) -> [UInt8] {
        var w = ByteWriter()
        w.write(byte: 2)
        w.write(zigzag: 7)
        w.write(varint: 1)
        w.write(zigzag: 1_000)
        w.write(varint: heldImpression ? 1 : 0)
        if heldImpression {
            w.write(byte: 0)            // an impression
            w.write(zigzag: 1_500)      // ts
            w.write(zigzag: 0)          // known-from − ts
            w.write(zigzag: 42)         // source offset
            w.write(varint: 0)          // sub-index
            w.write(optionalString: "r1")
            w.write(varint: 2)
            w.write(string: "a")
            w.write(string: "b")
            w.write(byte: 0)            // no positions
        }
        return w.bytes
    }
}

extension EngineDriverTests {
    /// Through the engine: an item task's checkpoint holding the earlier
    /// release's join copies (`join_held` with entries) stops the takeover
    /// naming the field and the way out; the examples of those impressions
    /// were lost silently before.
    func testAnItemCheckpointHoldingTheEarlierJoinsCopiesIsRefused() throws {
        let driver = makeDriver()
        try produceAndRunToTheEnd(driver)
        let meta = "freshet:\(driver.group):ckpt:items-0:meta"
        XCTAssertNotNil(try driver.redis.command(["HGET", meta, "next_offset"]).string, "the first run checkpointed items-0")
        _ = try driver.redis.command(["HSET", meta, "join_held", "\u{1}\u{1}held"])

        let b = try driver.startInstance()
        driver.assignEverything(to: b)
        XCTAssertThrowsError(try driver.runToCompletion()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("items-0") && text.contains("join_held") && text.contains("start a new group"), text)
        }
    }

}

/// Through the task layer (the engine driver runs without embeddings): an
/// earlier release's item task checkpointed the join's open windows
/// (`join_state`); the counts stage joins now, so a takeover of open windows
/// is refused, and an empty one (every window closed) is taken over.
final class RetiredItemJoinWindowsTests: KeyedExamplesTestCase {
    func testAnItemCheckpointHoldingOpenJoinWindowsIsRefusedAndAnEmptyOneTakenOver() throws {
        let d = driver()
        interaction(d, "u1", "x", at: base + 10 * second)
        impression(d, "u1", ["a", "b"], at: base + 50 * second, request: "r")
        d.runUntilQuiet()
        try d.checkpoint()
        let items = TaskId(stage: .items, partition: 0)
        XCTAssertNotNil(d.checkpoints[items], "the item task checkpointed")

        d.checkpoints[items]?.meta["join_state"] = ImpressionJoiner().encode()
        XCTAssertNoThrow(try d.crash(items), "an empty join state is taken over")

        // An earlier release's join_pending (format 1): taken over without
        // waiting items, refused with them (they lack what a part needs).
        let original = d.checkpoints[items]?.meta["join_pending"]
        d.checkpoints[items]?.meta["join_pending"] = formatOnePending(waiting: false)
        XCTAssertNoThrow(try d.crash(items))
        d.checkpoints[items]?.meta["join_pending"] = formatOnePending(waiting: true)
        XCTAssertThrowsError(try d.crash(items)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("items-0") && text.contains("format 1 holds 1 impressed items") && text.contains("start a new group"), text)
        }
        d.checkpoints[items]?.meta["join_pending"] = original

        let joiner = ImpressionJoiner()
        joiner.recordImpression(userId: "u1", requestId: "r1", ts: base, items: [.init(itemId: "a", position: 0, features: nil)])
        d.checkpoints[items]?.meta["join_state"] = joiner.encode()
        XCTAssertThrowsError(try d.crash(items)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("items-0") && text.contains("open join windows") && text.contains("start a new group"), text)
        }
    }

    /// `PendingImpressionFeatures`' format 1: not evaluated yet, no item
    /// ahead, then (optionally) one waiting item (user, item, ts, known-from − ts).
    private func formatOnePending(waiting: Bool) -> [UInt8] {
        var w = ByteWriter()
        w.write(byte: 1)
        w.write(byte: 0)
        w.write(varint: 0)
        w.write(varint: waiting ? 1 : 0)
        if waiting {
            w.write(string: "u1")
            w.write(string: "a")
            w.write(zigzag: base)
            w.write(zigzag: 0)
        }
        return w.bytes
    }
}

extension RetiredItemJoinWindowsTests {
    /// A join copy an earlier release's counts stage sent to the item stage
    /// (origin: the counts stage), read after an upgrade, is not counted
    /// again in the item's features (it is a copy of an event the features
    /// took directly); the same event from a source is counted.
    func testAnEarlierReleasesJoinCopyIsNotCountedAgain() throws {
        XCTAssertEqual(try impressionsAfterACopy(from: .counts), 1, "the counts stage's copy is not counted")
        XCTAssertEqual(try impressionsAfterACopy(from: .impressions), 2, "the same event from a source is")
    }

    /// Item `a`'s `impressions_7d` at the end of a bounded run of one
    /// impression of it, with the same item event sent again to its item
    /// task as from `stage` (a partition no source task uses).
    private func impressionsAfterACopy(from stage: TaskId.Stage) throws -> Int64? {
        let d = driver()
        impression(d, "u1", ["a"], at: base + 50 * second, request: "r")
        d.runUntilQuiet()
        let event = ItemEvent(itemId: "a", userId: "u1", ts: base + 50 * second, kind: .impression(position: nil), requestId: "r")
        let origin = RecordOrigin(sourceTopic: try XCTUnwrap(stage.originCode), partition: 7, offset: 0)
        var bundle: [UInt8] = []
        RecordBundle.append(RepartitionRecord.item(event, origin: origin).encoded(), to: &bundle)
        d.send(.items, partition: KafkaProducer.partition(forKey: Array("a".utf8), partitionCount: d.repartitionPartitions), bundle)
        d.runUntilQuiet()
        d.finishSources()
        return d.itemFeatures("a")?.impressions7d
    }
}
