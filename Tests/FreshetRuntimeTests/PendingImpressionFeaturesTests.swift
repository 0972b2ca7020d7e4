import FreshetCore
import FreshetEmbeddings
import FreshetFeatures
@testable import FreshetRuntime
import XCTest

/// `PendingImpressionFeatures`: an impression's item features are the
/// item's events known by its known-from time, evaluated once the watermark
/// passes it, whatever was applied ahead of it meanwhile.
final class PendingImpressionFeaturesTests: XCTestCase {
    let hour: Int64 = 3_600_000
    let base: Int64 = 1_767_225_600_000  // a pane start

    /// The evaluated features by (user, item, ts), as the counts stage would get them.
    final class Recorder {
        var features: [String: [Int64]] = [:]
        var count: Int { features.count }
        func record(_ shown: PendingImpressionFeatures.AwaitedItem, knownFrom: Int64, _ counts: PendingImpressionFeatures.Counts) {
            features["\(shown.userId) \(shown.itemId) \(shown.ts)"] = [counts.popularity7d, counts.impressions7d]
        }
        func take(_ user: String, _ item: String, ts: Int64) -> [Int64]? {
            features.removeValue(forKey: "\(user) \(item) \(ts)")
        }
    }

    final class Fixture {
        let store = ItemFeatureStore()
        let pending = PendingImpressionFeatures()
        let recorded = Recorder()

        /// An event the store applies and the item task notes.
        @discardableResult
        func apply(_ item: String, ts: Int64, knownFrom: Int64? = nil, positive: Bool) -> UInt32 {
            let event = ItemEvent(itemId: item, userId: "u", ts: ts,
                                  kind: positive ? .interaction(.click, dwellMs: nil) : .impression(position: nil))
            let (_, slot) = store.applyReturningSlot(event, watermark: nil)
            pending.noteApplied(item: slot!, ts: ts, knownFrom: knownFrom ?? ts, positive: positive)
            return slot!
        }

        /// An impression of `item` by `user`: applied, then waiting.
        func impression(_ user: String, _ item: String, ts: Int64, knownFrom: Int64? = nil) {
            let slot = apply(item, ts: ts, knownFrom: knownFrom, positive: false)
            let shown = PendingImpressionFeatures.AwaitedItem(
                userId: user, requestId: "r-\(user)", ts: ts, source: RecordOrigin(sourceTopic: 1, partition: 3, offset: ts, subIndex: 2),
                itemId: item, position: 5)
            pending.await(shown, item: slot, knownFrom: knownFrom ?? ts, store: store, evaluated: recorded.record)
        }

        func take(_ user: String, _ item: String, ts: Int64) -> [Int64]? { recorded.take(user, item, ts: ts) }
    }

    func testAnImpressionWaitsForTheWatermarkAndLeavesOutWhatIsKnownAfterIt() {
        let f = Fixture()
        f.apply("a", ts: base + 100, positive: true)
        f.impression("u1", "a", ts: base + 200)
        // Read ahead of the watermark, before it passes the impression: a
        // click after it, another user's impression after it, and a late
        // click from before it that was known only after it.
        f.apply("a", ts: base + 300, positive: true)
        f.apply("a", ts: base + 310, positive: false)
        f.apply("a", ts: base + 150, knownFrom: base + 400, positive: true)
        f.pending.evaluate(through: base + 199, store: f.store, f.recorded.record)
        XCTAssertEqual(f.recorded.count, 0, "the watermark has not passed it")
        XCTAssertEqual(f.pending.waitingCount, 1)
        f.pending.evaluate(through: base + 250, store: f.store, f.recorded.record)
        XCTAssertEqual(f.take("u1", "a", ts: base + 200), [1, 1], "the click before it and the impression itself")

        // A later impression, known after all of them, counts them all.
        f.impression("u2", "a", ts: base + 450)
        f.pending.evaluate(through: base + 500, store: f.store, f.recorded.record)
        XCTAssertEqual(f.take("u2", "a", ts: base + 450), [3, 3])
        f.pending.evaluate(through: base + 120_000, store: f.store, f.recorded.record)
        XCTAssertEqual(f.pending.aheadCount, 0, "events known by the watermark are forgotten (swept once a minute of event time)")
    }

    /// The same events applied in another order (the partitions interleaved
    /// otherwise) give the same features.
    func testTheFeaturesDoNotDependOnTheOrderEventsWereApplied() {
        let events: [(item: String, ts: Int64, knownFrom: Int64, positive: Bool)] = [
            ("a", base + 10, base + 10, true), ("a", base + 20, base + 20, false), ("b", base + 30, base + 30, true),
            ("a", base + 40, base + 90, true), ("a", base + 60, base + 60, false), ("a", base + 70, base + 70, true),
        ]
        var results: Set<[Int64]> = []
        for order in [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [2, 5, 0, 3, 1, 4]] {
            let f = Fixture()
            for k in order {
                let e = events[k]
                if k == 4 {
                    f.impression("u", "a", ts: e.ts)
                } else {
                    f.apply(e.item, ts: e.ts, knownFrom: e.knownFrom, positive: e.positive)
                }
            }
            f.pending.evaluate(through: base + 1_000, store: f.store, f.recorded.record)
            results.insert(f.take("u", "a", ts: base + 60) ?? [])
        }
        XCTAssertEqual(results, [[1, 2]], "the click at 10 (not the one known at 90 nor the one at 70); impressions at 20 and 60")
    }

    /// A late impression (known after its time) counts the events known by
    /// then, over the panes from its known-from time's window to its own pane.
    func testALateImpressionCountsWhatWasKnownByThenWithinTheWindowOfThatTime() {
        let f = Fixture()
        let ts = base + 10 * 24 * hour
        f.apply("a", ts: ts - 160 * hour, positive: true)  // in the window of ts, not of ts + 24 h
        f.apply("a", ts: ts - 100 * hour, positive: true)  // in both
        f.apply("a", ts: ts + 30 * 60_000, positive: true)  // the impression's pane, after it, known before its known-from
        f.apply("a", ts: ts + 2 * hour, positive: true)     // a later pane
        f.impression("u", "a", ts: ts, knownFrom: ts + 24 * hour)
        f.pending.evaluate(through: ts + 25 * hour, store: f.store, f.recorded.record)
        XCTAssertEqual(f.take("u", "a", ts: ts), [2, 1])
    }

    /// Known by the watermark already (an idle partition's edge): evaluated at once.
    func testAnImpressionKnownByTheWatermarkIsEvaluatedAtOnce() {
        let f = Fixture()
        f.pending.evaluate(through: base + 1_000, store: f.store, f.recorded.record)
        f.apply("a", ts: base + 500, positive: true)
        f.impression("u", "a", ts: base + 600)
        XCTAssertEqual(f.pending.waitingCount, 0)
        XCTAssertEqual(f.take("u", "a", ts: base + 600), [1, 1])
    }

    /// A checkpoint taken while impressions wait and events are ahead
    /// restores to the same evaluation.
    func testACheckpointRestoresWaitingImpressionsAndEventsAhead() throws {
        let f = Fixture()
        f.apply("a", ts: base + 100, positive: true)
        f.impression("u1", "a", ts: base + 200)
        f.impression("u2", "b", ts: base + 210)
        f.apply("a", ts: base + 300, positive: true)
        f.apply("b", ts: base + 150, knownFrom: base + 400, positive: true)
        f.pending.evaluate(through: base + 120, store: f.store, f.recorded.record)
        let bytes = f.pending.encode(store: f.store)

        let restored = PendingImpressionFeatures()
        try restored.restore(bytes, store: f.store)
        XCTAssertEqual(restored.encode(store: f.store), bytes)
        XCTAssertEqual(restored.waitingCount, 2)
        XCTAssertEqual(restored.aheadCount, 4, "the events applied known after the watermark (the click at 100 is not)")
        let recorded = Recorder()
        var restoredItems: [PendingImpressionFeatures.AwaitedItem] = []
        restored.evaluate(through: base + 250, store: f.store) { shown, known, counts in
            restoredItems.append(shown)
            recorded.record(shown, knownFrom: known, counts)
        }
        f.pending.evaluate(through: base + 250, store: f.store, f.recorded.record)
        for (user, item, ts) in [("u1", "a", base + 200), ("u2", "b", base + 210)] {
            XCTAssertNotNil(f.recorded.features["\(user) \(item) \(ts)"])
            XCTAssertEqual(recorded.take(user, item, ts: ts), f.recorded.take(user, item, ts: ts))
        }
        // What the counts stage needs of each came back whole.
        XCTAssertEqual(restoredItems.map(\.requestId), ["r-u1", "r-u2"])
        XCTAssertEqual(restoredItems.map(\.source), [RecordOrigin(sourceTopic: 1, partition: 3, offset: base + 200, subIndex: 2),
                                                     RecordOrigin(sourceTopic: 1, partition: 3, offset: base + 210, subIndex: 2)])
        XCTAssertEqual(restoredItems.map(\.position), [5, 5])
        XCTAssertThrowsError(try restored.restore([9], store: f.store))
        XCTAssertThrowsError(try restored.restore(Array(bytes.dropLast()), store: f.store))
    }
}
