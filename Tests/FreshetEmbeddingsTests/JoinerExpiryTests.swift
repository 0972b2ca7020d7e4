import XCTest
import FreshetCore
@testable import FreshetEmbeddings

/// Expiry of the joiner's state by the watermark: pending entries close at
/// `impressionTs + window`, tombstones leave `lateTTL` after the close, and the
/// interned ids of entries that left are recycled.
final class JoinerExpiryTests: XCTestCase {
    let feats = ServingFeatures(interactionCount: 7, popularity7d: 11, impressions7d: 13)

    func show(_ j: ImpressionJoiner, user: String = "u1", items: [String], ts: Int64, request: String? = "r1") {
        j.recordImpression(Impression(requestId: request, userId: user, itemsShown: items, positions: items.indices.map { Int32($0) }, ts: ts)) { _ in self.feats }
    }

    func testPendingCloseAtWindowAndTombstoneLeavesAfterLateTTL() {
        let j = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 5_000)
        show(j, items: ["a", "b", "c"], ts: 10_000)
        XCTAssertEqual(j.pendingCount, 3)
        XCTAssertTrue(j.advance(watermark: 10_999).isEmpty)
        XCTAssertEqual(j.pendingCount, 3)
        // Closes at 11,000: three negatives, three tombstones.
        let closed = j.advance(watermark: 11_000)
        XCTAssertEqual(closed.map(\.itemId).sorted(), ["a", "b", "c"])
        XCTAssertEqual(closed.map(\.eventTs), [11_000, 11_000, 11_000])
        XCTAssertEqual(j.pendingCount, 0)
        XCTAssertEqual(j.closedCount, 3)
        // Tombstones stay until close + lateTTL = 16,000, exactly.
        XCTAssertTrue(j.advance(watermark: 15_999).isEmpty)
        XCTAssertEqual(j.closedCount, 3)
        _ = j.advance(watermark: 16_000)
        XCTAssertEqual(j.stateCount, 0)
        XCTAssertEqual(j.liveIds.users, 0)
        XCTAssertEqual(j.liveIds.impressions, 0)
    }

    func testWatermarkThatDoesNotMoveExpiresNothing() {
        let j = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 1_000)
        show(j, items: ["a"], ts: 0)
        _ = j.advance(watermark: 5_000)
        XCTAssertEqual(j.stateCount, 0)
        show(j, items: ["b"], ts: 4_500)
        // A watermark that goes back (or stays) is ignored: b's window is open until 5,500.
        XCTAssertTrue(j.advance(watermark: 4_000).isEmpty)
        XCTAssertTrue(j.advance(watermark: 5_000).isEmpty)
        XCTAssertEqual(j.pendingCount, 1)
        XCTAssertEqual(j.advance(watermark: 5_500).map(\.itemId), ["b"])
    }

    /// An impression recorded behind the watermark (its window already
    /// ended) closes at the next advance even when the watermark stays: the
    /// end of a bounded run releases late impressions at the final watermark
    /// (a breaker's runs lost their negatives when the watermark had already
    /// reached it).
    func testAWatermarkThatStaysClosesTheWindowsItAlreadyPassed() {
        let j = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 1_000)
        _ = j.advance(watermark: 5_000)
        show(j, items: ["a", "b"], ts: 3_000)
        show(j, items: ["c"], ts: 4_500)
        XCTAssertEqual(j.advance(watermark: 5_000).map(\.itemId).sorted(), ["a", "b"], "closed at 4,000")
        XCTAssertEqual(j.pendingCount, 1, "c's window is open until 5,500")
        XCTAssertTrue(j.advance(watermark: 5_000).isEmpty, "each window closes once")
    }

    func testImpressionFarBehindTheWatermarkClosesAndLeavesNoTombstone() {
        let j = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 2_000)
        _ = j.advance(watermark: 100_000)
        show(j, items: ["old"], ts: 1_000)
        XCTAssertEqual(j.pendingCount, 1)
        // Closed at the next advance (its window ended long ago); its tombstone
        // would have expired at 4,000, so none is kept.
        let out = j.advance(watermark: 100_001)
        XCTAssertEqual(out.map(\.itemId), ["old"])
        XCTAssertEqual(out.first?.eventTs, 2_000)
        XCTAssertEqual(j.stateCount, 0)
    }

    func testReimpressionAfterCloseReplacesTombstoneAndItsStaleExpiry() {
        let j = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 2_000)
        show(j, items: ["a"], ts: 0, request: "r1")
        XCTAssertEqual(j.advance(watermark: 1_000).count, 1)
        XCTAssertEqual(j.closedCount, 1)
        show(j, items: ["a"], ts: 2_500, request: "r2")
        XCTAssertEqual(j.pendingCount, 1)
        XCTAssertEqual(j.closedCount, 0)
        // The old tombstone's expiry (3,000) must not remove the new pending entry.
        XCTAssertTrue(j.advance(watermark: 3_000).isEmpty)
        XCTAssertEqual(j.pendingCount, 1)
        let ex = j.recordInteraction(Interaction(userId: "u1", itemId: "a", action: .click, ts: 3_100))
        XCTAssertEqual(ex.requestId, "r2")
        XCTAssertFalse(ex.late)
        XCTAssertTrue(j.advance(watermark: 3_500).isEmpty) // engaged: no negative
        _ = j.advance(watermark: 5_500)
        XCTAssertEqual(j.stateCount, 0)
    }

    func testDuplicateImpressionFoldsAndReleasesItsReferences() {
        let j = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 0)
        show(j, items: ["a"], ts: 0, request: "r1")
        show(j, items: ["a"], ts: 100, request: "r2")
        XCTAssertEqual(j.duplicateImpressions, 1)
        XCTAssertEqual(j.stateCount, 1)
        let out = j.advance(watermark: 1_000)
        XCTAssertEqual(out.map(\.requestId), ["r1"])
        XCTAssertEqual(out.first?.features, feats)
        // lateTTL 0: no tombstones, every id released.
        XCTAssertEqual(j.stateCount, 0)
        XCTAssertEqual(j.liveIds.users, 0)
        XCTAssertEqual(j.liveIds.impressions, 0)
    }

    /// A steady stream with the watermark following event time holds only the
    /// impressions of the last window + lateTTL (plus the out-of-orderness lag),
    /// and every id is recycled once the watermark passes the end.
    func testSteadyStreamStateIsWindowPlusLateTTL() {
        let j = ImpressionJoiner(windowMs: 10_000, lateTTLMs: 60_000)
        var maxState = 0
        for t in 0..<20_000 {
            let ts = Int64(t) * 100 // one impression of 10 items every 100 ms
            show(j, user: "u\(t % 997)", items: (0..<10).map { "i\((t * 7 + $0 * 131) % 5_000)" }, ts: ts, request: "req-\(t)")
            _ = j.advance(watermark: ts - 5_000)
            maxState = max(maxState, j.stateCount)
        }
        // 70 s + 5 s of lag at 10 impressions a second, 10 items each, minus folded duplicates.
        XCTAssertLessThanOrEqual(maxState, 750 * 10 + 10)
        XCTAssertGreaterThan(maxState, 650 * 10)
        // The peak is taken as entries arrive, before the advance that follows them.
        XCTAssertEqual(j.peakStateCount, maxState + 10)
        _ = j.advance(watermark: 10_000_000)
        XCTAssertEqual(j.stateCount, 0)
        XCTAssertEqual(j.liveIds.users, 0)
        XCTAssertEqual(j.liveIds.impressions, 0)
    }

    /// One deadline per impression, not per item; an item's entry is its
    /// id, three features, its position and flags.
    func testEntriesAreCompact() {
        XCTAssertEqual(MemoryLayout<ImpressionGroup.Item>.stride, 48)
        XCTAssertEqual(MemoryLayout<GroupDeadline>.stride, 16)
    }
}
