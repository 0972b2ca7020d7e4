import XCTest
import FreshetCore
@testable import FreshetEmbeddings

/// `ImpressionJoiner.encode`/`restore`: a joiner restored from a checkpoint
/// continues exactly as the one that wrote it (the same examples for the
/// same input afterwards), whatever its open windows and tombstones held.
final class JoinerCheckpointTests: XCTestCase {
    /// Examples of one step, in an order that does not depend on heap ties.
    func canonical(_ examples: [TrainingExample]) -> [String] {
        examples.map { "\($0)" }.sorted()
    }

    /// Random impressions (some with request ids, positions and features),
    /// interactions (positives, skips, late ones) and watermark steps over a
    /// few users and items; at random points the first joiner's state is
    /// restored into the second, which must then match it step by step.
    func testARestoredJoinerContinuesAsTheOriginal() throws {
        var rng = SplitMix64(seed: 7)
        for round in 0..<40 {
            // The owner index (threshold 1) or not (24) on either side: the same examples.
            let original = ImpressionJoiner(windowMs: 100, lateTTLMs: 300, ownerIndexThreshold: round % 2 == 0 ? 1 : 24)
            let restored = ImpressionJoiner(windowMs: 100, lateTTLMs: 300, ownerIndexThreshold: round % 3 == 0 ? 1 : 24)
            var synced = false
            var now: Int64 = 1_000
            var compared = 0
            for _ in 0..<400 {
                let user = "u\(rng.next() % 4)", item = "item-\(rng.next() % 6)"
                switch rng.next() % 10 {
                case 0...3:
                    let features = rng.next() % 3 == 0 ? nil
                        : ServingFeatures(interactionCount: Int64(rng.next() % 9), popularity7d: Int64(rng.next() % 50),
                                          impressions7d: Int64(rng.next() % 90))
                    let position = rng.next() % 2 == 0 ? Int32(rng.next() % 20) : nil
                    let request = rng.next() % 2 == 0 ? "req-\(rng.next() % 5)" : nil
                    let ts = now + Int64(rng.next() % 40) - 20
                    for joiner in [original, restored] {
                        joiner.recordImpression(userId: user, requestId: request, ts: ts,
                                                items: [.init(itemId: item, position: position, features: features)])
                    }
                case 4...6:
                    let action: Action = rng.next() % 4 == 0 ? .skip : .click
                    let e = Interaction(userId: user, itemId: item, action: action, ts: now + Int64(rng.next() % 30))
                    let a = original.recordInteraction(e), b = restored.recordInteraction(e)
                    if synced { XCTAssertEqual(a, b, "round \(round)"); compared += 1 }
                case 7...8:
                    now += Int64(rng.next() % 60)
                    let a = original.advance(watermark: now), b = restored.advance(watermark: now)
                    if synced { XCTAssertEqual(canonical(a), canonical(b), "round \(round)"); compared += a.count }
                default:
                    try restored.restore(original.encode())
                    synced = true
                    XCTAssertEqual(restored.stateCount, original.stateCount)
                    XCTAssertEqual(restored.pendingCount, original.pendingCount)
                    XCTAssertEqual(restored.watermark, original.watermark)
                }
            }
            let a = original.advance(watermark: now + 10_000), b = restored.advance(watermark: now + 10_000)
            if synced {
                XCTAssertEqual(canonical(a), canonical(b), "round \(round)")
                XCTAssertGreaterThan(compared, 0, "round \(round) compared nothing")
            }
            XCTAssertEqual(restored.stateCount, 0)
            XCTAssertEqual(restored.liveIds.users + restored.liveIds.impressions, 0, "every user and impression released")
        }
    }

    /// Open windows and tombstones both come back: a restored joiner emits
    /// the pending impression's negative at its close and finds the closed
    /// one's context for a late positive.
    func testOpenWindowsAndTombstonesSurvive() throws {
        let original = ImpressionJoiner(windowMs: 100, lateTTLMs: 1_000)
        let features = ServingFeatures(interactionCount: 2, popularity7d: 5, impressions7d: 7)
        original.recordImpression(userId: "u", requestId: "r-old", ts: 0, items: [.init(itemId: "closed", position: 3, features: features)])
        XCTAssertEqual(original.advance(watermark: 150).map(\.itemId), ["closed"])
        original.recordImpression(userId: "u", requestId: nil, ts: 140, items: [.init(itemId: "open", position: nil, features: nil)])
        let restored = ImpressionJoiner(windowMs: 100, lateTTLMs: 1_000)
        try restored.restore(original.encode())

        let late = restored.recordInteraction(Interaction(userId: "u", itemId: "closed", action: .like, ts: 400))
        XCTAssertTrue(late.late)
        XCTAssertEqual(late.position, 3)
        XCTAssertEqual(late.requestId, "r-old")
        XCTAssertEqual(late.features, features)
        XCTAssertTrue(restored.advance(watermark: 200).isEmpty, "the watermark came back too: nothing closes before 240")
        let negatives = restored.advance(watermark: 240)
        XCTAssertEqual(negatives.map(\.itemId), ["open"])
        XCTAssertEqual(negatives.first?.impressionTs, 140)
        XCTAssertNil(negatives.first?.features)
    }

    /// A truncated or unknown state is refused with a codec error, and the
    /// joiner is left empty rather than half restored.
    func testCorruptStateIsRefused() {
        let original = ImpressionJoiner(windowMs: 100)
        original.recordImpression(userId: "u", requestId: "r", ts: 10, items: [.init(itemId: "i", position: 1, features: nil)])
        let bytes = original.encode()
        let joiner = ImpressionJoiner(windowMs: 100)
        XCTAssertThrowsError(try joiner.restore(Array(bytes.dropLast(2))))
        XCTAssertEqual(joiner.stateCount, 0)
        XCTAssertEqual(joiner.liveIds.users, 0)
        XCTAssertThrowsError(try joiner.restore([9] + bytes.dropFirst()))
        XCTAssertThrowsError(try joiner.restore(bytes + [0]))
    }
}
