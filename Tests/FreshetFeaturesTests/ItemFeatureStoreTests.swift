import XCTest
import FreshetCore
@testable import FreshetFeatures

final class ItemFeatureStoreTests: XCTestCase {
    // Small panes keep the arithmetic readable: 10 ms panes, 3-pane window.
    let spec = PaneSpec(paneMs: 10, windowPanes: 3)

    func store() -> ItemFeatureStore { ItemFeatureStore(panes: spec, trending: TrendingDecay(halfLifeMs: 10, anchorMs: 0)) }

    func pos(_ item: String, _ ts: EventTimeMs, _ action: Action = .click) -> ItemEvent {
        ItemEvent(itemId: item, userId: "u", ts: ts, kind: .interaction(action, dwellMs: nil))
    }

    func imp(_ item: String, _ ts: EventTimeMs) -> ItemEvent {
        ItemEvent(itemId: item, userId: "u", ts: ts, kind: .impression(position: 0))
    }

    func counts(_ s: ItemFeatureStore, _ item: String) -> [Int64] {
        guard let f = s.features(of: item) else { return [] }
        return [f.popularity7d, f.impressions7d]
    }

    /// The field-wise `apply` (no `ItemEvent`) folds exactly as `apply(ItemEvent)`:
    /// same outcomes, features, dirty keys and late drops over a mixed sequence.
    func testFieldwiseApplyMatchesItemEventApply() {
        let events: [(ItemEvent, EventTimeMs?)] = [
            (pos("a", 5), nil), (imp("a", 7), 9), (pos("b", 12, .skip), nil), (imp("b", 14), 14),
            (pos("a", 25), 25), (imp("a", 3), nil), (pos("b", 41, .like), 41), (imp("c", 44), nil),
            (pos("a", 2), nil), (imp("c", 60), 60),
        ]
        let viaEvents = store(), viaFields = store()
        for (e, w) in events {
            let a = viaEvents.apply(e, watermark: w)
            let b = viaFields.apply(itemId: e.itemId, ts: e.ts, kind: e.kind, watermark: w)
            XCTAssertEqual(a, b, "outcome of \(e)")
        }
        for item in ["a", "b", "c"] {
            XCTAssertEqual(viaEvents.features(of: item), viaFields.features(of: item), item)
        }
        XCTAssertEqual(viaEvents.takeDirty(), viaFields.takeDirty())
        XCTAssertEqual(viaEvents.droppedLateCount, viaFields.droppedLateCount)
        XCTAssertGreaterThan(viaEvents.droppedLateCount, 0, "the sequence exercises a late drop")
    }

    /// `topTrending` ranks as the `trending` set does after a trim: higher
    /// score first, equal scores by member bytes, the larger first; items
    /// with no positive are left out.
    func testTopTrendingRanksAsTheSortedSetKeepsMembers() {
        let s = store()
        for e in [pos("a", 5), pos("b", 5), pos("c", 5), pos("c", 6), pos("ab", 5), imp("z", 5)] { s.apply(e, watermark: nil) }
        XCTAssertEqual(s.topTrending(10).map(\.itemId), ["c", "b", "ab", "a"])
        XCTAssertEqual(s.topTrending(2).map(\.itemId), ["c", "b"])
        XCTAssertEqual(s.topTrending(1).first?.log2Score, s.features(of: "c")?.trendingLog2Score)
        XCTAssertEqual(s.topTrending(0).count, 0)
    }

    func testCountingAndNothingVisibleWithoutWatermark() {
        let s = store()
        XCTAssertEqual(s.apply(pos("a", 5), watermark: nil), .counted)
        XCTAssertEqual(s.apply(imp("a", 6), watermark: nil), .counted)
        XCTAssertEqual(s.apply(imp("a", 7), watermark: nil), .counted)
        XCTAssertEqual(counts(s, "a"), [0, 0])
        s.advanceWatermark(to: 9)
        XCTAssertEqual(counts(s, "a"), [1, 2])
        XCTAssertEqual(s.features(of: "a")?.updatedMs, 7)
    }

    func testSkipIsIgnored() {
        let s = store()
        XCTAssertEqual(s.apply(pos("a", 5, .skip), watermark: 9), .ignored)
        XCTAssertNil(s.features(of: "a"))
        XCTAssertEqual(s.takeDirty(), [])
    }

    func testLateInWindowCountedTooLateDropped() {
        let s = store()
        s.advanceWatermark(to: 55) // pane 5, window 3...5
        XCTAssertEqual(s.apply(pos("a", 30), watermark: 55), .counted) // pane 3: late but in window
        XCTAssertEqual(s.apply(pos("a", 29), watermark: 55), .droppedLate) // pane 2: gone
        XCTAssertEqual(s.apply(imp("a", 0), watermark: 55), .droppedLate)
        XCTAssertEqual(s.droppedLateCount, 2)
        XCTAssertEqual(counts(s, "a"), [1, 0])
        // Dropped-late events still feed updatedMs and trending.
        XCTAssertEqual(s.features(of: "a")?.updatedMs, 30)
        let t = TrendingDecay(halfLifeMs: 10, anchorMs: 0)
        XCTAssertEqual(s.features(of: "a")!.trendingLog2Score!, t.combine(3.0, 2.9), accuracy: 1e-12)
    }

    func testFuturePanesInvisibleUntilWatermarkReachesThem() {
        let s = store()
        s.advanceWatermark(to: 15) // pane 1
        XCTAssertEqual(s.apply(pos("a", 15), watermark: nil), .counted)
        XCTAssertEqual(s.apply(pos("a", 45), watermark: nil), .counted) // pane 4, ahead
        XCTAssertEqual(counts(s, "a"), [1, 0])
        _ = s.takeDirty()
        s.advanceWatermark(to: 39) // pane 3: pane 4 still ahead; pane 1 still in 1...3
        XCTAssertEqual(counts(s, "a"), [1, 0])
        XCTAssertEqual(s.takeDirty(), [], "nothing visible changed")
        s.advanceWatermark(to: 40) // pane 4: window 2...4, pane 1 expires, pane 4 enters
        XCTAssertEqual(counts(s, "a"), [1, 0])
        XCTAssertEqual(s.takeDirty(), ["a"])
    }

    func testCountsFallForItemsWithoutNewEventsAndAreMarkedDirty() {
        let s = store()
        s.advanceWatermark(to: 0)
        s.apply(pos("a", 1), watermark: nil)  // pane 0
        s.apply(pos("a", 12), watermark: nil) // pane 1
        s.apply(imp("b", 25), watermark: nil) // pane 2 (ahead)
        XCTAssertEqual(Set(s.takeDirty()), ["a", "b"]) // b: updatedMs changed
        s.advanceWatermark(to: 25) // pane 2: window 0...2
        XCTAssertEqual(counts(s, "a"), [2, 0])
        XCTAssertEqual(counts(s, "b"), [0, 1])
        XCTAssertEqual(s.takeDirty().sorted(), ["a", "b"], "a's pane 1 and b's pane 2 entered")
        s.advanceWatermark(to: 30) // pane 3: window 1...3, a's pane 0 expires
        XCTAssertEqual(counts(s, "a"), [1, 0])
        XCTAssertEqual(s.takeDirty(), ["a"])
        s.advanceWatermark(to: 45) // pane 4: a's pane 1 expires
        XCTAssertEqual(counts(s, "a"), [0, 0])
        XCTAssertEqual(counts(s, "b"), [0, 1])
        XCTAssertEqual(s.takeDirty(), ["a"])
        s.advanceWatermark(to: 1_000) // big jump: everything expires
        XCTAssertEqual(counts(s, "b"), [0, 0])
        XCTAssertEqual(s.takeDirty(), ["b"])
        XCTAssertEqual(s.takeChangedForCheckpoint().sorted(), ["a", "b"])
    }

    func testLateEventCreatingNewOldestPaneStillExpires() {
        let s = store()
        s.advanceWatermark(to: 35) // pane 3, window 1...3
        s.apply(pos("a", 35), watermark: nil) // pane 3
        s.apply(pos("a", 15), watermark: nil) // pane 1 (new oldest)
        XCTAssertEqual(counts(s, "a"), [2, 0])
        _ = s.takeDirty()
        s.advanceWatermark(to: 40) // pane 4: pane 1 expires
        XCTAssertEqual(counts(s, "a"), [1, 0])
        XCTAssertEqual(s.takeDirty(), ["a"])
        s.advanceWatermark(to: 60) // pane 6: pane 3 expires
        XCTAssertEqual(counts(s, "a"), [0, 0])
        XCTAssertEqual(s.takeDirty(), ["a"])
    }

    func testApplyAdvancesStoreWatermark() {
        let s = store()
        s.apply(pos("a", 5), watermark: nil)
        XCTAssertEqual(s.apply(pos("b", 50), watermark: 50), .counted)
        XCTAssertEqual(s.watermark, 50)
        XCTAssertEqual(counts(s, "a"), [0, 0]) // pane 0 left window 3...5
        XCTAssertEqual(s.apply(pos("a", 5), watermark: 20), .droppedLate, "a lower watermark is ignored")
    }

    func testMatchesBruteForceReference() {
        var rng = SystemRandomNumberGenerator()
        let s = store()
        var counted: [(item: String, ts: EventTimeMs, positive: Bool)] = []
        var w: EventTimeMs? = nil
        for step in 0..<2_000 {
            if step % 7 == 0 { w = (w ?? 0) + EventTimeMs.random(in: 0...6, using: &rng) }
            let item = "i\(Int.random(in: 0..<8, using: &rng))"
            let ts = (w ?? 0) + EventTimeMs.random(in: -40...20, using: &rng)
            let positive = Bool.random(using: &rng)
            let e = positive ? pos(item, ts) : imp(item, ts)
            if s.apply(e, watermark: w) == .counted { counted.append((item, ts, positive)) }
        }
        let range = spec.windowPanes(at: w!)
        for k in 0..<8 {
            let item = "i\(k)"
            let visible = counted.filter { $0.item == item && range.contains(spec.pane(of: $0.ts)) }
            let expected = [Int64(visible.filter(\.positive).count), Int64(visible.filter { !$0.positive }.count)]
            XCTAssertEqual(counts(s, item), expected, item)
        }
    }

    func testCheckpointRoundTripKeepsTimers() throws {
        let s = store()
        s.advanceWatermark(to: 25) // pane 2
        s.apply(pos("a", 5), watermark: nil)  // pane 0
        s.apply(imp("a", 15), watermark: nil) // pane 1
        s.apply(pos("a", 45), watermark: nil) // pane 4 (ahead)
        s.apply(imp("b", 20), watermark: nil)
        let restored = store()
        try restored.restoreMetadata(s.encodeMetadata())
        for item in ["a", "b"] {
            try restored.restoreEntry(itemId: item, bytes: try XCTUnwrap(s.encodeEntry(item)))
            XCTAssertEqual(restored.features(of: item), s.features(of: item))
        }
        XCTAssertEqual(restored.watermark, 25)
        XCTAssertEqual(restored.takeDirty(), [])
        restored.advanceWatermark(to: 30) // pane 3: pane 0 expires
        XCTAssertEqual(counts(restored, "a"), [0, 1])
        XCTAssertEqual(restored.takeDirty(), ["a"])
        restored.advanceWatermark(to: 40) // pane 4: pane 1 expires, pane 4 enters
        XCTAssertEqual(counts(restored, "a"), [1, 0])
        XCTAssertEqual(restored.takeDirty(), ["a"])
        restored.advanceWatermark(to: 50) // pane 5: b's pane 2 expires
        XCTAssertEqual(counts(restored, "b"), [0, 0])
        XCTAssertEqual(restored.takeDirty(), ["b"])
        var bad = s.encodeEntry("a")!
        bad[0] = 7
        XCTAssertThrowsError(try restored.restoreEntry(itemId: "a", bytes: bad))
    }

    /// `asOfMs` (the Feast `_ts` of item rows): the later of `updatedMs` and the
    /// start of the pane whose arrival last pushed a counted pane out of the
    /// window. It depends on the data, not on how far a watermark jumped.
    func testAsOfFollowsExpiriesNotWatermarkJumps() throws {
        let s = store()
        s.apply(pos("a", 5), watermark: 5)   // pane 0
        s.apply(imp("a", 12), watermark: 12) // pane 1
        XCTAssertEqual(s.features(of: "a")?.asOfMs, 12, "no expiry yet: updated_ms")
        s.advanceWatermark(to: 34) // pane 3: pane 0 leaves, the counts fell at 30
        XCTAssertEqual(counts(s, "a"), [0, 1])
        XCTAssertEqual(s.features(of: "a")?.asOfMs, 30)
        XCTAssertEqual(s.features(of: "a")?.updatedMs, 12, "updated_ms stays the latest event time")
        // One jump far ahead: pane 1 leaves; its counts fell when pane 4 began (40), whatever the jump.
        let jumped = store()
        jumped.apply(pos("a", 5), watermark: 5)
        jumped.apply(imp("a", 12), watermark: 12)
        jumped.advanceWatermark(to: 95)
        XCTAssertEqual(counts(jumped, "a"), [0, 0])
        XCTAssertEqual(jumped.features(of: "a")?.asOfMs, 40)
        s.advanceWatermark(to: 95)
        XCTAssertEqual(s.features(of: "a")?.asOfMs, 40, "stepwise and jumping watermarks agree")
        // A new event later than the expiry wins.
        s.apply(pos("a", 96), watermark: 96)
        XCTAssertEqual(s.features(of: "a")?.asOfMs, 96)

        // Carried by checkpoints; a pane that expired while the task was away sets it on restore.
        let before = store()
        before.apply(pos("b", 5), watermark: 5)
        before.apply(pos("b", 15), watermark: 15)
        before.advanceWatermark(to: 31) // pane 0 left at 30
        let entry = try XCTUnwrap(before.encodeEntry("b"))
        let restored = store()
        try restored.restoreMetadata(before.encodeMetadata())
        try restored.restoreEntry(itemId: "b", bytes: entry)
        XCTAssertEqual(restored.features(of: "b"), before.features(of: "b"))
        let later = store()
        later.advanceWatermark(to: 45) // pane 4: pane 1 is gone too, since 40
        try later.restoreEntry(itemId: "b", bytes: entry)
        XCTAssertEqual(later.features(of: "b")?.asOfMs, 40)
        XCTAssertEqual(counts(later, "b"), [0, 0])
        // Format 1 entries (before asOfMs existed) still restore.
        var v1: [UInt8] = [1]
        var w = ByteWriter(capacity: 8)
        w.write(zigzag: 15)
        v1 += w.bytes + [0, 0]
        try restored.restoreEntry(itemId: "c", bytes: v1)
        XCTAssertEqual(restored.features(of: "c")?.updatedMs, 15)
        XCTAssertEqual(restored.features(of: "c")?.asOfMs, 15)
    }
}
