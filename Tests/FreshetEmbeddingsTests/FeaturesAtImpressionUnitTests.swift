import FreshetCore
@testable import FreshetEmbeddings
import XCTest

/// `FeaturesAtImpression`: record, take, expiry by the join's watermark, checkpoint round trip.
final class FeaturesAtImpressionUnitTests: XCTestCase {
    typealias Key = FeaturesAtImpression.Key
    typealias Recorded = FeaturesAtImpression.Recorded

    func testACopyTakesWhatItsImpressionRecordedOnce() {
        let log = FeaturesAtImpression(graceMs: 1_000)
        let k = Key(userId: "u", itemId: "i", ts: 100)
        log.record(k, Recorded(popularity7d: 3, impressions7d: 7))
        XCTAssertEqual(log.take(k), Recorded(popularity7d: 3, impressions7d: 7))
        XCTAssertNil(log.take(k), "taken once")
        XCTAssertEqual(log.misses, 1)
        XCTAssertEqual(log.count, 0)
    }

    func testTheSameImpressionTwiceSharesTheFirstRecording() {
        let log = FeaturesAtImpression(graceMs: 1_000)
        let k = Key(userId: "u", itemId: "i", ts: 100)
        log.record(k, Recorded(popularity7d: 1, impressions7d: 1))
        log.record(k, Recorded(popularity7d: 1, impressions7d: 2))
        XCTAssertEqual(log.take(k)?.impressions7d, 1)
        XCTAssertEqual(log.take(k)?.impressions7d, 1)
        XCTAssertNil(log.take(k))
    }

    /// Ids are their bytes: canonically equivalent but different ids (NFC
    /// "é" and "e" + combining acute) are two users and two items, each
    /// taking its own recording. `String`'s `==` had merged them, so the
    /// second user's copy took the first user's features (and missed its own).
    func testCanonicallyEquivalentIdsAreDifferentKeys() {
        let log = FeaturesAtImpression(graceMs: 1_000)
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        XCTAssertEqual(composed, decomposed, "Swift's String equality conflates them")
        log.record(Key(userId: composed, itemId: "i", ts: 100), Recorded(popularity7d: 1, impressions7d: 1))
        log.record(Key(userId: decomposed, itemId: "i", ts: 100), Recorded(popularity7d: 2, impressions7d: 2))
        log.record(Key(userId: "u", itemId: composed, ts: 100), Recorded(popularity7d: 3, impressions7d: 3))
        log.record(Key(userId: "u", itemId: decomposed, ts: 100), Recorded(popularity7d: 4, impressions7d: 4))
        XCTAssertEqual(log.count, 4)
        XCTAssertEqual(log.take(Key(userId: decomposed, itemId: "i", ts: 100))?.popularity7d, 2)
        XCTAssertEqual(log.take(Key(userId: composed, itemId: "i", ts: 100))?.popularity7d, 1)
        XCTAssertEqual(log.take(Key(userId: "u", itemId: decomposed, ts: 100))?.popularity7d, 4)
        XCTAssertEqual(log.take(Key(userId: "u", itemId: composed, ts: 100))?.popularity7d, 3)
        XCTAssertEqual(log.misses, 0)
    }

    /// A late impression's copy is released by the time it is known from,
    /// hours after its own: its entry must wait for it. Expiring by the
    /// event time dropped it first, and the copy fell back to counts read
    /// later (a breaker's finding: impressions known more than 70 minutes
    /// late carried events known after them, after a restore or a move).
    func testALateImpressionsEntryExpiresByWhenItIsKnown() throws {
        let log = FeaturesAtImpression(graceMs: 100)
        let late = Key(userId: "u", itemId: "i", ts: 1_000)
        log.record(late, Recorded(popularity7d: 2, impressions7d: 5), knownFrom: 10_000)
        log.expire(joinWatermark: 10_050)
        XCTAssertEqual(log.count, 1, "known from 10,000: within the grace")
        var restored = FeaturesAtImpression(graceMs: 100)
        try restored.restore(log.encode())
        for copy in [log, restored] {
            XCTAssertEqual(copy.take(late), Recorded(popularity7d: 2, impressions7d: 5))
        }
        restored = FeaturesAtImpression(graceMs: 100)
        log.record(late, Recorded(popularity7d: 2, impressions7d: 5), knownFrom: 10_000)
        try restored.restore(log.encode())
        for copy in [log, restored] {
            copy.expire(joinWatermark: 10_100)
            XCTAssertNil(copy.take(late), "the grace past its known-from time")
        }
    }

    func testEntriesWhoseCopyNeverComesExpireByTheJoinWatermark() {
        let log = FeaturesAtImpression(graceMs: 1_000)
        log.record(Key(userId: "u", itemId: "a", ts: 100), Recorded(popularity7d: 0, impressions7d: 1))
        log.record(Key(userId: "u", itemId: "b", ts: 500), Recorded(popularity7d: 0, impressions7d: 1))
        log.expire(joinWatermark: 1_099)
        XCTAssertEqual(log.count, 2)
        log.expire(joinWatermark: 1_100)
        XCTAssertEqual(log.count, 1)
        XCTAssertEqual(log.expired, 1)
        XCTAssertNotNil(log.take(Key(userId: "u", itemId: "b", ts: 500)))
        // A stale deadline (taken, then recorded again) does not drop the new entry early.
        log.record(Key(userId: "u", itemId: "b", ts: 500), Recorded(popularity7d: 2, impressions7d: 2))
        log.expire(joinWatermark: 1_499)
        XCTAssertEqual(log.take(Key(userId: "u", itemId: "b", ts: 500))?.popularity7d, 2)
    }

    /// An entry taken leaves its deadline behind, and its slot may hold a
    /// later recording of another key when that deadline comes: the
    /// deadline must not drop the newcomer (whose own time is far later).
    func testAStaleDeadlineDoesNotDropTheEntryNowInItsSlot() {
        let log = FeaturesAtImpression(graceMs: 100)
        let early = Key(userId: "u", itemId: "a", ts: 0), late = Key(userId: "v", itemId: "b", ts: 1_000)
        log.record(early, Recorded(popularity7d: 1, impressions7d: 1))
        XCTAssertNotNil(log.take(early))
        log.record(late, Recorded(popularity7d: 7, impressions7d: 7))
        log.expire(joinWatermark: 150)  // the early key's deadline passes
        XCTAssertEqual(log.count, 1)
        XCTAssertEqual(log.expired, 0)
        XCTAssertEqual(log.take(late)?.popularity7d, 7)
    }

    func testCheckpointRoundTrip() throws {
        let log = FeaturesAtImpression(graceMs: 1_000)
        let a = Key(userId: "user-ä", itemId: "a", ts: -5)
        let b = Key(userId: "u", itemId: "b", ts: 1_767_225_600_000)
        log.record(a, Recorded(popularity7d: 4, impressions7d: 9))
        log.record(b, Recorded(popularity7d: 0, impressions7d: 1))
        log.record(b, Recorded(popularity7d: 0, impressions7d: 2))
        let restored = FeaturesAtImpression(graceMs: 1_000)
        try restored.restore(log.encode())
        XCTAssertEqual(restored.encode(), log.encode())
        XCTAssertEqual(restored.take(a), Recorded(popularity7d: 4, impressions7d: 9))
        XCTAssertEqual(restored.take(b)?.impressions7d, 1)
        XCTAssertEqual(restored.take(b)?.impressions7d, 1, "both pending copies of b survive")
        XCTAssertThrowsError(try restored.restore([9, 0]))
        XCTAssertThrowsError(try restored.restore(Array(log.encode().dropLast())))
    }

    /// Entries recorded out of time order leave memory when the recording
    /// queue reaches them, but expire exactly at their time + grace: a copy
    /// after that misses, a checkpoint leaves them out, and a new recording
    /// of the same key starts anew. Checked against a model that drops every
    /// entry at or before the limit at each `expire` (what a heap of
    /// deadlines did), over random interleavings.
    func testExpiryIsExactWhateverTheRecordingOrder() throws {
        for seed in 1...30 as ClosedRange<UInt64> {
            var random = SplitMix64(seed: seed)
            let log = FeaturesAtImpression(graceMs: 100)
            var model: [Key: (recorded: Recorded, pending: Int)] = [:]
            var modelMisses = 0
            var watermark: Int64 = 0
            for step in 0..<600 {
                let key = Key(userId: "u\(random.next() % 4)", itemId: "i\(random.next() % 4)",
                              ts: watermark - 150 + Int64(random.next() % 400))
                switch random.next() % 4 {
                case 0, 1:
                    let recorded = Recorded(popularity7d: Int64(step), impressions7d: 1)
                    log.record(key, recorded)
                    if let held = model[key] { model[key] = (held.recorded, held.pending + 1) } else { model[key] = (recorded, 1) }
                case 2:
                    let expected = model[key]
                    if let held = expected {
                        model[key] = held.pending > 1 ? (held.recorded, held.pending - 1) : nil
                    } else {
                        modelMisses += 1
                    }
                    XCTAssertEqual(log.take(key), expected?.recorded, "seed \(seed) step \(step)")
                default:
                    watermark += Int64(random.next() % 60)
                    log.expire(joinWatermark: watermark)
                    model = model.filter { $0.key.ts > watermark - 100 }
                }
                XCTAssertEqual(log.misses, modelMisses)
            }
            // The checkpoint holds exactly the model's entries.
            let restored = FeaturesAtImpression(graceMs: 100)
            try restored.restore(log.encode())
            XCTAssertEqual(restored.count, model.count, "seed \(seed)")
            for (key, held) in model {
                for _ in 0..<held.pending { XCTAssertEqual(restored.take(key), held.recorded) }
            }
            XCTAssertEqual(restored.misses, 0)
        }
    }
}
