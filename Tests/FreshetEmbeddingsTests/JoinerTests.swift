import XCTest
import FreshetCore
@testable import FreshetEmbeddings

final class JoinerTests: XCTestCase {
    let feats = ServingFeatures(interactionCount: 3, popularity7d: 10, impressions7d: 100)

    func impression(_ j: ImpressionJoiner, items: [String], ts: Int64) {
        j.recordImpression(Impression(requestId: "r1", userId: "u1", itemsShown: items, positions: items.indices.map { Int32($0) }, ts: ts)) { _ in self.feats }
    }

    func testPositiveJoinsImpressionContext() {
        let j = ImpressionJoiner(windowMs: 600_000)
        impression(j, items: ["a", "b"], ts: 1000)
        let ex = j.recordInteraction(Interaction(userId: "u1", itemId: "b", action: .click, dwellMs: 42, ts: 5000))
        XCTAssertEqual(ex.label, .positive)
        XCTAssertEqual(ex.position, 1)
        XCTAssertEqual(ex.requestId, "r1")
        XCTAssertEqual(ex.impressionTs, 1000)
        XCTAssertEqual(ex.eventTs, 5000)
        XCTAssertEqual(ex.features, feats)
        XCTAssertFalse(ex.late)
        // Window closes: only "a" (never engaged) becomes a negative.
        let closed = j.advance(watermark: 601_000)
        XCTAssertEqual(closed.map(\.itemId), ["a"])
        XCTAssertEqual(closed[0].label, .negative)
        XCTAssertNil(closed[0].action)
        XCTAssertEqual(closed[0].position, 0)
        XCTAssertEqual(closed[0].eventTs, 601_000)
        XCTAssertEqual(j.pendingCount, 0)
    }

    func testSkipIsNegativeAndNotDoubleCounted() {
        let j = ImpressionJoiner(windowMs: 600_000)
        impression(j, items: ["a"], ts: 1000)
        let ex = j.recordInteraction(Interaction(userId: "u1", itemId: "a", action: .skip, ts: 2000))
        XCTAssertEqual(ex.label, .negative)
        XCTAssertEqual(ex.action, .skip)
        XCTAssertEqual(ex.position, 0)
        XCTAssertTrue(j.advance(watermark: 10_000_000).isEmpty)
    }

    /// A late interaction (the counts stage stamps when it is known) is
    /// decided by that time, not by whether the close happened to come first:
    /// known after the window, a positive is late and leaves the impression
    /// to close as a negative; known after the tombstone's expiry, it gets no
    /// impression context, even while the entry is still there.
    func testALateInteractionIsDecidedByWhenItIsKnown() {
        let j = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 10_000)
        impression(j, items: ["a", "b", "c"], ts: 0)
        let inTime = j.recordInteraction(Interaction(userId: "u1", itemId: "a", action: .click, ts: 500), knownAt: 1_000)
        XCTAssertFalse(inTime.late, "known at the window's end: joined")
        let afterWindow = j.recordInteraction(Interaction(userId: "u1", itemId: "b", action: .click, ts: 500), knownAt: 1_001)
        XCTAssertTrue(afterWindow.late, "known after the window, though the window is still open")
        XCTAssertEqual(afterWindow.impressionTs, 0)
        let afterExpiry = j.recordInteraction(Interaction(userId: "u1", itemId: "c", action: .skip, ts: 900), knownAt: 11_001)
        XCTAssertNil(afterExpiry.impressionTs, "known after the tombstone would have expired: no context")
        // "b" and "c" were not engaged in time: both close as negatives.
        XCTAssertEqual(j.advance(watermark: 1_000).map(\.itemId).sorted(), ["b", "c"])
    }

    /// A repeated impression of a pending pair is folded into it only when
    /// known within its window; a late one known after it takes the pair over
    /// (as it would once the first had closed), while the first closes as it would.
    func testALateRepeatedImpressionKnownAfterTheWindowIsNotFolded() {
        let j = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 10_000)
        impression(j, items: ["a"], ts: 0)
        j.recordImpression(userId: "u1", requestId: "r2", ts: 800, knownAt: 1_500,
                           items: [ImpressionJoiner.ShownItem(itemId: "a", position: 4, features: feats)])
        XCTAssertEqual(j.duplicateImpressions, 0)
        let ex = j.recordInteraction(Interaction(userId: "u1", itemId: "a", action: .click, ts: 1_600))
        XCTAssertEqual(ex.requestId, "r2", "the later impression owns the pair")
        XCTAssertFalse(ex.late)
        XCTAssertEqual(j.advance(watermark: 1_000).map(\.requestId), ["r1"], "the first closes unengaged")
        // Known within the first's window: folded.
        let k = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 10_000)
        impression(k, items: ["a"], ts: 0)
        k.recordImpression(userId: "u1", requestId: "r2", ts: 800, knownAt: 1_000,
                           items: [ImpressionJoiner.ShownItem(itemId: "a", position: 4, features: feats)])
        XCTAssertEqual(k.duplicateImpressions, 1)
    }

    /// An item twice in one impression list is one impression of the pair,
    /// late or not (a late list's second copy was "known after the window" of
    /// the first and took it over: two negatives).
    func testAnItemTwiceInOneLateImpressionIsOneImpression() {
        let j = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 10_000)
        j.recordImpression(userId: "u1", requestId: "r", ts: 0, knownAt: 5_000,
                           items: ["a", "a", "b"].map { ImpressionJoiner.ShownItem(itemId: $0, position: nil, features: feats) })
        XCTAssertEqual(j.advance(watermark: 6_000).map(\.itemId).sorted(), ["a", "b"])
    }

    /// An interaction earlier than the pair's impression is not a response to
    /// it: no context, whenever it arrives (late, it used to join as on time).
    func testAnInteractionBeforeItsImpressionGetsNoContext() {
        let j = ImpressionJoiner(windowMs: 1_000, lateTTLMs: 10_000)
        impression(j, items: ["a"], ts: 5_000)
        let before = j.recordInteraction(Interaction(userId: "u1", itemId: "a", action: .click, ts: 4_999), knownAt: 5_500)
        XCTAssertNil(before.impressionTs)
        XCTAssertFalse(before.late)
        let after = j.recordInteraction(Interaction(userId: "u1", itemId: "a", action: .click, ts: 5_000))
        XCTAssertEqual(after.impressionTs, 5_000)
    }

    func testWindowCloseNeedsWatermark() {
        let j = ImpressionJoiner(windowMs: 1000)
        impression(j, items: ["a"], ts: 0)
        XCTAssertTrue(j.advance(watermark: 999).isEmpty)
        XCTAssertEqual(j.advance(watermark: 1000).count, 1)
        XCTAssertTrue(j.advance(watermark: 2000).isEmpty)
    }

    func testLatePositiveAfterCloseIsStillPositive() {
        let j = ImpressionJoiner(windowMs: 1000, lateTTLMs: 60_000)
        impression(j, items: ["a"], ts: 0)
        XCTAssertEqual(j.advance(watermark: 5000).map(\.label), [.negative])
        let ex = j.recordInteraction(Interaction(userId: "u1", itemId: "a", action: .like, ts: 4000))
        XCTAssertEqual(ex.label, .positive)
        XCTAssertTrue(ex.late)
        XCTAssertEqual(ex.impressionTs, 0)
        XCTAssertEqual(ex.features, feats)
        // Even after the tombstone expired it is a positive (without impression context).
        _ = j.advance(watermark: 1_000_000)
        let ex2 = j.recordInteraction(Interaction(userId: "u1", itemId: "a", action: .click, ts: 900_000))
        XCTAssertEqual(ex2.label, .positive)
        XCTAssertNil(ex2.impressionTs)
    }

    func testInteractionWithoutImpression() {
        let j = ImpressionJoiner()
        let ex = j.recordInteraction(Interaction(userId: "u", itemId: "x", action: .watch, ts: 10))
        XCTAssertEqual(ex.label, .positive)
        XCTAssertNil(ex.position)
        XCTAssertEqual(j.stateCount, 0)
    }

    func testStateIsBoundedByTTL() {
        let j = ImpressionJoiner(windowMs: 1000, lateTTLMs: 5000)
        for t in 0..<1000 {
            impression(j, items: ["i\(t % 50)", "k\(t)"], ts: Int64(t) * 100)
            _ = j.advance(watermark: Int64(t) * 100 - 5000)
        }
        // Keys live at most window + lateTTL (6 s = 60 impressions × 2 items) plus lag.
        XCTAssertLessThan(j.stateCount, 2 * 130)
        _ = j.advance(watermark: 1_000_000)
        XCTAssertEqual(j.stateCount, 0)
    }

    func testExampleJSON() throws {
        let ex = TrainingExample(label: .positive, userId: "u\"1", itemId: "i9", action: .click, position: 0, dwellMs: 4500,
                                 requestId: "r7", impressionTs: 1, eventTs: 2, features: feats)
        let s = String(decoding: ex.jsonBytes(), as: UTF8.self)
        XCTAssertEqual(s, #"{"label":1,"user_id":"u\"1","item_id":"i9","action":"click","position":0,"dwell_ms":4500,"request_id":"r7","impression_ts":1,"ts":2,"interaction_count":3,"popularity_7d":10,"impressions_7d":100}"#)
        let obj = try JSONSerialization.jsonObject(with: Data(ex.jsonBytes())) as? [String: Any]
        XCTAssertEqual(obj?["user_id"] as? String, "u\"1")
        let neg = TrainingExample(label: .negative, userId: "u", itemId: "i", action: nil, eventTs: 5)
        XCTAssertEqual(String(decoding: neg.jsonBytes(), as: UTF8.self), #"{"label":0,"user_id":"u","item_id":"i","ts":5}"#)
    }
}
