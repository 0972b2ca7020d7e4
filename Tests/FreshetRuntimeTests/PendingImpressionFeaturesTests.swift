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

    final class Fixture {
        let store = ItemFeatureStore()
        let pending = PendingImpressionFeatures()
        let recorded = FeaturesAtImpression(graceMs: .max / 4)

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
            pending.await(FeaturesAtImpression.Key(userId: user, itemId: item, ts: ts), item: slot, knownFrom: knownFrom ?? ts,
                          store: store, into: recorded)
        }

        func take(_ user: String, _ item: String, ts: Int64) -> [Int64]? {
            recorded.take(FeaturesAtImpression.Key(userId: user, itemId: item, ts: ts)).map { [$0.popularity7d, $0.impressions7d] }
        }
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
        f.pending.evaluate(through: base + 199, store: f.store, into: f.recorded)
        XCTAssertEqual(f.recorded.count, 0, "the watermark has not passed it")
        XCTAssertEqual(f.pending.waitingCount, 1)
        f.pending.evaluate(through: base + 250, store: f.store, into: f.recorded)
        XCTAssertEqual(f.take("u1", "a", ts: base + 200), [1, 1], "the click before it and the impression itself")

        // A later impression, known after all of them, counts them all.
        f.impression("u2", "a", ts: base + 450)
        f.pending.evaluate(through: base + 500, store: f.store, into: f.recorded)
        XCTAssertEqual(f.take("u2", "a", ts: base + 450), [3, 3])
        f.pending.evaluate(through: base + 120_000, store: f.store, into: f.recorded)
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
            f.pending.evaluate(through: base + 1_000, store: f.store, into: f.recorded)
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
        f.pending.evaluate(through: ts + 25 * hour, store: f.store, into: f.recorded)
        XCTAssertEqual(f.take("u", "a", ts: ts), [2, 1])
    }

    /// Known by the watermark already (an idle partition's edge): evaluated at once.
    func testAnImpressionKnownByTheWatermarkIsEvaluatedAtOnce() {
        let f = Fixture()
        f.pending.evaluate(through: base + 1_000, store: f.store, into: f.recorded)
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
        f.pending.evaluate(through: base + 120, store: f.store, into: f.recorded)
        let bytes = f.pending.encode(store: f.store)

        let restored = PendingImpressionFeatures()
        try restored.restore(bytes, store: f.store)
        XCTAssertEqual(restored.encode(store: f.store), bytes)
        XCTAssertEqual(restored.waitingCount, 2)
        XCTAssertEqual(restored.aheadCount, 4, "the events applied known after the watermark (the click at 100 is not)")
        let recorded = FeaturesAtImpression(graceMs: .max / 4)
        restored.evaluate(through: base + 250, store: f.store, into: recorded)
        f.pending.evaluate(through: base + 250, store: f.store, into: f.recorded)
        for (user, item, ts) in [("u1", "a", base + 200), ("u2", "b", base + 210)] {
            let key = FeaturesAtImpression.Key(userId: user, itemId: item, ts: ts)
            XCTAssertEqual(recorded.take(key), f.recorded.take(key))
        }
        XCTAssertThrowsError(try restored.restore([9], store: f.store))
        XCTAssertThrowsError(try restored.restore(Array(bytes.dropLast()), store: f.store))
    }
}

/// `HeldJoinCopies`: copies wait in their counts partition's order.
final class HeldJoinCopiesTests: XCTestCase {
    let a = DuplicateFilter.Source(topic: 2, partition: 0)
    let b = DuplicateFilter.Source(topic: 2, partition: 1)

    func released(_ held: inout HeldJoinCopies, through watermark: Int64?) -> [[UInt8]] {
        var out: [[UInt8]] = []
        held.release(through: watermark) { out.append(Array($0)) }
        return out
    }

    func testCopiesWaitForTheWatermarkInTheirPartitionsOrder() throws {
        var held = HeldJoinCopies()
        XCTAssertTrue(held.mustHold(a, knownFrom: 10, watermark: nil), "no watermark yet")
        XCTAssertFalse(held.mustHold(a, knownFrom: 10, watermark: 10))
        [UInt8](arrayLiteral: 1).withUnsafeBytes { held.hold(a, knownFrom: 10, bytes: $0) }
        XCTAssertTrue(held.mustHold(a, knownFrom: 5, watermark: 7), "behind an earlier copy of its partition")
        XCTAssertFalse(held.mustHold(b, knownFrom: 5, watermark: 7), "another partition's copy goes on")
        [UInt8](arrayLiteral: 2).withUnsafeBytes { held.hold(a, knownFrom: 5, bytes: $0) }
        [UInt8](arrayLiteral: 3).withUnsafeBytes { held.hold(b, knownFrom: 8, bytes: $0) }
        XCTAssertEqual(held.count, 3)

        var restored = HeldJoinCopies()
        try restored.restore(held.encode())
        XCTAssertEqual(restored.encode(), held.encode())
        for var copies in [held, restored] {
            XCTAssertEqual(released(&copies, through: 9), [[3]], "a's first copy (10) holds its second back")
            XCTAssertEqual(released(&copies, through: 10), [[1], [2]])
            XCTAssertEqual(copies.count, 0)
            XCTAssertFalse(copies.mustHold(a, knownFrom: 5, watermark: 10))
        }
        XCTAssertThrowsError(try restored.restore([7]))
    }

    func testReleasingEverythingIgnoresTimes() {
        var held = HeldJoinCopies()
        [UInt8](arrayLiteral: 1).withUnsafeBytes { held.hold(b, knownFrom: 50, bytes: $0) }
        [UInt8](arrayLiteral: 2).withUnsafeBytes { held.hold(a, knownFrom: 90, bytes: $0) }
        XCTAssertEqual(released(&held, through: nil), [[2], [1]], "partition by partition, in a fixed order")
    }

    /// A long queue released a part at a time is compacted (its consumed
    /// front and those copies' bytes dropped): what is left keeps its bytes,
    /// order and checkpoint form.
    func testALongQueueReleasedInStepsKeepsItsCopiesBytes() throws {
        var held = HeldJoinCopies()
        func copy(_ k: Int) -> [UInt8] { (0...(k % 5)).map { UInt8(truncatingIfNeeded: k &+ $0) } }
        for k in 0..<3_000 { copy(k).withUnsafeBytes { held.hold(a, knownFrom: Int64(k), bytes: $0) } }
        var next = 0
        for step in [1_500, 2_200, 2_600] {
            XCTAssertEqual(released(&held, through: Int64(step - 1)), (next..<step).map(copy))
            next = step
            // Later copies arrive after a compaction, appended behind the kept ones.
            copy(3_000 + step).withUnsafeBytes { held.hold(b, knownFrom: 5_000, bytes: $0) }
            var restored = HeldJoinCopies()
            try restored.restore(held.encode())
            XCTAssertEqual(restored.encode(), held.encode())
        }
        XCTAssertEqual(released(&held, through: nil), (2_600..<3_000).map(copy) + [4_500, 5_200, 5_600].map(copy))
        XCTAssertEqual(held.count, 0)
    }
}
