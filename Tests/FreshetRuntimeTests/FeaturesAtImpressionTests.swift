import FreshetCore
import FreshetEmbeddings
import FreshetFeatures
@testable import FreshetRuntime
import XCTest

/// The item features an impression's examples carry are the item's as of the
/// impression (evaluated by the item task once its watermark passes the
/// impression), not as of when the counts stage joins it: an engagement in
/// between, the example's own label included, must not leak into them
/// (`TaskDriver`, default topology: examples through the counts stage).
final class FeaturesAtImpressionTests: KeyedExamplesTestCase {
    override var base: Int64 { 1_767_225_600_000 + 600_000 }  // 2026-01-01T00:10Z: every event below shares one pane

    func shown(_ d: TaskDriver) throws -> [TrainingExample] {
        try d.examples.flatMap { try ExampleCodec.decodeBundle(ExampleCodec.header + $0) }
            .filter { !$0.userId.hasPrefix("clock") && $0.impressionTs != nil }
            .sorted { ($0.itemId, $0.eventTs) < ($1.itemId, $1.eventTs) }
    }

    /// Before the impression: another user's click on `a` (counted), and a
    /// watermark in the impression's pane (so the item features read at the
    /// release, as before, would see the whole pane). After the impression,
    /// before the counts stage releases it: the impressed user's own click on
    /// `a` and another user's like of `b` (neither counted).
    func feed(_ d: TaskDriver) {
        interaction(d, "u3", "a", at: base + 50 * second)
        d.runUntilQuiet()
        clock(d, at: base + 60 * second)
        impression(d, "u1", ["a", "b"], at: base + 100 * second, request: "r1")
        d.runUntilQuiet()
        interaction(d, "u1", "a", at: base + 102 * second)
        interaction(d, "u5", "b", "like", at: base + 103 * second)
        d.runUntilQuiet()
    }

    func assertFeaturesAsOfTheImpression(_ d: TaskDriver, file: StaticString = #filePath, line: UInt = #line) throws {
        let examples = try shown(d)
        XCTAssertEqual(examples.map(\.itemId), ["a", "b"], file: file, line: line)
        XCTAssertEqual(examples.map(\.label), [.positive, .negative], file: file, line: line)
        XCTAssertEqual(examples.map { $0.features?.popularity7d }, [1, 0],
                       "only the click before the impression: the label's own click and the later like are not in it",
                       file: file, line: line)
        XCTAssertEqual(examples.map { $0.features?.impressions7d }, [1, 1], "the impression itself", file: file, line: line)
        XCTAssertEqual(examples.map { $0.features?.interactionCount }, [0, 0], file: file, line: line)
        // The item features themselves count everything.
        XCTAssertEqual(d.itemFeatures("a")?.popularity7d, 2, file: file, line: line)
        XCTAssertEqual(d.itemFeatures("b")?.popularity7d, 1, file: file, line: line)
    }

    func testAClickRightAfterItsImpressionIsNotInTheImpressionsFeatures() throws {
        let d = driver()
        feed(d)
        let held = d.tasks.values.compactMap { $0 as? CountTask }.reduce(0) { $0 + $1.heldCount }
        XCTAssertEqual(held, 2 + 2, "the two engagements (and the clock's skips) wait in the counts stage")
        let waiting = d.tasks.values.compactMap { ($0 as? ItemTask)?.embeddings?.pending }.reduce(0) { $0 + $1.waitingCount }
        XCTAssertEqual(waiting, 2 + 2, "the impression's a and b (and the clock's two impressions) wait for their features")
        clock(d, at: base + 200 * second)  // released (the same pane)
        clock(d, at: base + 2 * hour)      // windows closed
        try assertFeaturesAsOfTheImpression(d)
        let sides = d.tasks.values.compactMap { ($0 as? ItemTask)?.embeddings }
        XCTAssertEqual(sides.reduce(0) { $0 + $1.pending.waitingCount }, 2,
                       "every impression evaluated and sent but the two clock impressions', still waiting for the watermark")
        let stillHeld = d.tasks.values.compactMap { $0 as? CountTask }.reduce(0) { $0 + $1.heldCount }
        XCTAssertEqual(stillHeld, 2, "everything joined but the clock's two skips, ahead of the watermark")
    }

    /// A replay reads the interactions ahead of the impressions: the
    /// impressed user's click (2 s after the impression) and the later like
    /// reach the item tasks before the impression itself. They are in the
    /// impression's pane but after its time, so they are left out (a user's
    /// replay found 83% of on-time positives carrying their own click).
    func testAClickAppliedBeforeItsImpressionIsNotInTheImpressionsFeatures() throws {
        let d = driver()
        interaction(d, "u3", "a", at: base + 50 * second)
        d.runUntilQuiet()
        clock(d, at: base + 60 * second)
        interaction(d, "u1", "a", at: base + 102 * second)
        interaction(d, "u5", "b", "like", at: base + 103 * second)
        d.runUntilQuiet()
        XCTAssertEqual(d.itemFeatures("a")?.popularity7d, 2, "both clicks applied before the impression arrives")
        impression(d, "u1", ["a", "b"], at: base + 100 * second, request: "r1")
        d.runUntilQuiet()
        clock(d, at: base + 200 * second)
        clock(d, at: base + 2 * hour)
        try assertFeaturesAsOfTheImpression(d)
    }

    /// The item tasks crash after a checkpoint taken between the impression
    /// and its release: the waiting impressions and the events applied ahead
    /// of the watermark come back with the checkpoint (the replayed click must
    /// not be counted).
    func testTheRecordedFeaturesSurviveACrashOfTheItemTasks() throws {
        let d = driver()
        feed(d)
        try d.checkpoint()
        let waiting = d.tasks.values.compactMap { ($0 as? ItemTask)?.embeddings?.pending }.reduce(0) { $0 + $1.waitingCount }
        XCTAssertEqual(waiting, 2 + 2, "a and b wait for the watermark (and the clock's two impressions)")
        for p: Int32 in 0..<3 { try d.crash(TaskId(stage: .items, partition: p)) }
        clock(d, at: base + 200 * second)
        clock(d, at: base + 2 * hour)
        try assertFeaturesAsOfTheImpression(d)
    }

    /// Replayed after a crash from a checkpoint taken before the impression,
    /// the item task records the same features again (a function of its log).
    func testAReplayFromBeforeTheImpressionRecordsTheSameFeatures() throws {
        let d = driver()
        interaction(d, "u7", "zz", at: base)
        d.runUntilQuiet()
        try d.checkpoint()
        feed(d)
        for p: Int32 in 0..<3 { try d.crash(TaskId(stage: .items, partition: p)) }
        d.runUntilQuiet()
        clock(d, at: base + 200 * second)
        clock(d, at: base + 2 * hour)
        try assertFeaturesAsOfTheImpression(d)
    }
    /// An impression read two hours after its time, whose features reach
    /// the counts stage long after a watermark 70 minutes past its time:
    /// they are its features as of when it is known (a breaker's finding
    /// when the join copies were in the item stage: an entry expired by the
    /// impression's time, and the copy fell back to counts read later, with
    /// events known after the impression in them).
    func testALateImpressionsCopyFindsItsFeaturesAfterAnOldCountsMarker() throws {
        let d = driver()
        let ids = d.tasks.keys
        func run(_ stages: Set<TaskId.Stage>) {
            for id in ids.sorted(by: { $0.description < $1.description }) where stages.contains(id.stage) { d.run(id) }
        }
        let sources: Set<TaskId.Stage> = [.interactions, .impressions]
        interaction(d, "u3", "a", at: base + 10 * second)
        // u5's impression moves partition 1's watermark two hours on; u1's
        // (same partition) is then read late: known from that watermark + 1 ms.
        impression(d, "u5", ["z"], at: base + 2 * hour, request: "r5")
        impression(d, "u1", ["a"], at: base + 20 * second, request: "r1")
        // Every source at 80 minutes; the counts stage runs (its watermark
        // waits for the item tasks'), the item tasks do not read yet.
        for p: Int32 in 0..<2 {
            d.send(.interactions, partition: p, Array(#"{"user_id":"clock\#(p)","item_id":"clock-item","action":"skip","ts":\#(base + 80 * 60_000)}"#.utf8))
            d.send(.impressions, partition: p, Array(#"{"user_id":"clock\#(p)","items_shown":["clock-item"],"ts":\#(base + 80 * 60_000)}"#.utf8))
        }
        run(sources)
        run([.counts])
        // Clicks on `a` known after the impression, then every source past it;
        // the item tasks read all of it (features past the impression: evaluated)
        // before the counts stage joins the impression.
        interaction(d, "u7", "a", at: base + 2 * hour + 60 * second)
        interaction(d, "u9", "a", at: base + 2 * hour + 61 * second)
        for p: Int32 in 0..<2 {
            d.send(.interactions, partition: p, Array(#"{"user_id":"clock\#(p)","item_id":"clock-item","action":"skip","ts":\#(base + 3 * hour)}"#.utf8))
            d.send(.impressions, partition: p, Array(#"{"user_id":"clock\#(p)","items_shown":["clock-item"],"ts":\#(base + 3 * hour)}"#.utf8))
        }
        run(sources)
        run([.items])
        d.runUntilQuiet()
        clock(d, at: base + 5 * hour)
        let example = try XCTUnwrap(try shown(d).first { $0.requestId == "r1" })
        XCTAssertEqual(example.features?.popularity7d, 1, "u3's click, not the two known after the impression")
        XCTAssertEqual(example.features?.impressions7d, 1)
    }
}
