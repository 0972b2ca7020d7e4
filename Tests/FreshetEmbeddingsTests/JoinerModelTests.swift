import XCTest
import FreshetCore
@testable import FreshetEmbeddings

/// The joiner keeps one entry per impression (its items inline); its
/// examples must be exactly those of the join's definition, which is by
/// (user, item), a repeat within the window folded, a repeat after it a
/// new impression whatever the watermark: `ReferenceJoiner` below states that definition directly (a
/// dictionary of pairs, every deadline found by scanning), and random
/// streams of impressions (items repeated within and across impressions),
/// interactions (positives, skips, late ones) and watermark steps must give
/// the same examples and the same state counts from both.
final class JoinerModelTests: XCTestCase {
    /// The join by (user, item), written for clarity, not speed.
    final class ReferenceJoiner {
        struct Pair: Hashable { var user: String; var item: String }
        struct Entry {
            var ts: Int64
            var position: Int?
            var requestId: String?
            var features: ServingFeatures?
            var engaged = false
            var closed = false
        }
        let windowMs: Int64, lateTTLMs: Int64
        var entries: [Pair: Entry] = [:]
        /// Pending entries a later impression of their pair replaced: they only close.
        var superseded: [(Pair, Entry)] = []
        var watermark = Int64.min
        var duplicates = 0

        init(windowMs: Int64, lateTTLMs: Int64) { self.windowMs = windowMs; self.lateTTLMs = lateTTLMs }

        var pending: Int { entries.values.filter { !$0.closed }.count + superseded.count }
        var closed: Int { entries.values.filter { $0.closed }.count }

        func recordImpression(user: String, item: String, position: Int32?, requestId: String?, ts: Int64,
                              features: ServingFeatures?) {
            let pair = Pair(user: user, item: item)
            if let old = entries[pair], !old.closed {
                // Within the first one's window: the same impression.
                if ts <= old.ts + windowMs { duplicates += 1; return }
                superseded.append((pair, old))
            }
            entries[pair] = Entry(ts: ts, position: position.map(Int.init), requestId: requestId, features: features)
        }

        func recordInteraction(_ e: Interaction) -> TrainingExample {
            var ex = TrainingExample(label: e.action.isPositive ? .positive : .negative, userId: e.userId, itemId: e.itemId,
                                     action: e.action, dwellMs: e.dwellMs, requestId: e.requestId, eventTs: e.ts)
            let pair = Pair(user: e.userId, item: e.itemId)
            // Context while the impression's tombstone would live, by the
            // interaction's own time (not by whether the watermark expired it yet).
            if let entry = entries[pair], e.ts >= entry.ts, e.ts <= entry.ts + windowMs + lateTTLMs {
                ex.position = entry.position
                if ex.requestId == nil { ex.requestId = entry.requestId }
                ex.impressionTs = entry.ts
                ex.features = entry.features
                if entry.closed || e.ts > entry.ts + windowMs {
                    ex.late = e.action.isPositive
                } else {
                    entries[pair]?.engaged = true
                }
            }
            return ex
        }

        func advance(watermark w: Int64) -> [TrainingExample] {
            guard w > watermark else { return [] }
            watermark = w
            var out: [TrainingExample] = []
            for (pair, entry) in superseded where entry.ts + windowMs <= w && !entry.engaged {
                out.append(TrainingExample(label: .negative, userId: pair.user, itemId: pair.item, action: nil,
                                           position: entry.position, requestId: entry.requestId,
                                           impressionTs: entry.ts, eventTs: entry.ts + windowMs, features: entry.features))
            }
            superseded.removeAll { $0.1.ts + windowMs <= w }
            for (pair, entry) in entries where !entry.closed && entry.ts + windowMs <= w {
                let deadline = entry.ts + windowMs
                if !entry.engaged {
                    out.append(TrainingExample(label: .negative, userId: pair.user, itemId: pair.item, action: nil,
                                               position: entry.position, requestId: entry.requestId,
                                               impressionTs: entry.ts, eventTs: deadline, features: entry.features))
                }
                if lateTTLMs > 0 && deadline + lateTTLMs > w {
                    entries[pair]?.closed = true
                } else {
                    entries[pair] = nil
                }
            }
            for (pair, entry) in entries where entry.closed && entry.ts + windowMs + lateTTLMs <= w {
                entries[pair] = nil
            }
            return out
        }
    }

    func canonical(_ examples: [TrainingExample]) -> [String] { examples.map { "\($0)" }.sorted() }

    func testTheJoinerEqualsTheJoinByPair() {
        var rng = SplitMix64(seed: 11)
        for round in 0..<60 {
            let lateTTL: Int64 = round % 3 == 0 ? 0 : 250
            // Every other round indexes owners from the second live impression of a user on.
            let joiner = ImpressionJoiner(windowMs: 100, lateTTLMs: lateTTL, ownerIndexThreshold: round % 2 == 0 ? 1 : 24)
            let model = ReferenceJoiner(windowMs: 100, lateTTLMs: lateTTL)
            var now: Int64 = 1_000
            var negatives = 0, contexts = 0
            for step in 0..<300 {
                let user = "u\(rng.next() % 3)"
                switch rng.next() % 10 {
                case 0...3:
                    let ts = now + Int64(rng.next() % 300) - 30
                    let request = rng.next() % 3 == 0 ? nil : "r\(step)"
                    let count = 1 + Int(rng.next() % 5)
                    let items = (0..<count).map { k in
                        ImpressionJoiner.ShownItem(
                            itemId: "item-\(rng.next() % 7)", position: rng.next() % 4 == 0 ? nil : Int32(k),
                            features: rng.next() % 4 == 0 ? nil
                                : ServingFeatures(interactionCount: Int64(rng.next() % 5), popularity7d: Int64(step),
                                                  impressions7d: Int64(rng.next() % 90)))
                    }
                    joiner.recordImpression(userId: user, requestId: request, ts: ts, items: items)
                    for item in items {
                        model.recordImpression(user: user, item: item.itemId, position: item.position, requestId: request,
                                               ts: ts, features: item.features)
                    }
                case 4...6:
                    let action: Action = rng.next() % 4 == 0 ? .skip : (rng.next() % 2 == 0 ? .click : .like)
                    let e = Interaction(userId: user, itemId: "item-\(rng.next() % 7)", action: action,
                                        ts: now + Int64(rng.next() % 150), requestId: rng.next() % 5 == 0 ? "own" : nil)
                    let got = joiner.recordInteraction(e)
                    XCTAssertEqual(got, model.recordInteraction(e), "round \(round) step \(step)")
                    if got.impressionTs != nil { contexts += 1 }
                default:
                    now += Int64(rng.next() % 80)
                    let got = joiner.advance(watermark: now)
                    XCTAssertEqual(canonical(got), canonical(model.advance(watermark: now)), "round \(round) step \(step)")
                    negatives += got.count
                }
                XCTAssertEqual(joiner.pendingCount, model.pending, "round \(round) step \(step)")
                XCTAssertEqual(joiner.closedCount, model.closed, "round \(round) step \(step)")
            }
            XCTAssertEqual(joiner.duplicateImpressions, model.duplicates, "round \(round)")
            XCTAssertEqual(canonical(joiner.advance(watermark: now + 10_000)), canonical(model.advance(watermark: now + 10_000)))
            XCTAssertGreaterThan(negatives, 0, "round \(round) closed no window")
            XCTAssertGreaterThan(contexts, 0, "round \(round) joined no interaction")
            XCTAssertEqual(joiner.stateCount, 0)
            XCTAssertEqual(joiner.liveIds.users + joiner.liveIds.impressions, 0, "round \(round): everything released")
        }
    }
}
