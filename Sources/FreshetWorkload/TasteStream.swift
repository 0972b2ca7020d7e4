import FreshetCore
import Foundation
import FreshetEmbeddings

/// A synthetic interaction stream with the structure real catalogues have,
/// for tuning and checking the embeddings (seeded, deterministic):
///
/// - power-law popularity: items belong to `topics`; topic sizes and each
///   topic's items follow Zipf laws, and a share of picks (`globalShare`)
///   ignores taste and follows global popularity;
/// - users with several tastes: each user likes 1–`maxTastes` topics with
///   Dirichlet-like weights, and users' activity is itself Zipf;
/// - sessions: a user acts in sessions of geometric length (mean
///   `meanSession`), each session staying in one of the user's topics;
/// - bursts: `bursts` items become briefly very popular (a share
///   `burstShare` of picks during their window, for everyone).
///
/// Events are interactions (`click`/`watch`/`like`, `skipShare` skips),
/// ordered by time over `days` days.
package struct TasteStreamConfig: Sendable, Equatable {
    package var users = 4_000
    package var items = 3_000
    package var topics = 40
    package var interactions = 150_000
    package var maxTastes = 3
    package var meanSession = 8.0
    package var itemZipf = 1.0
    package var userZipf = 0.8
    package var globalShare = 0.15
    package var skipShare = 0.05
    package var bursts = 20
    package var burstShare = 0.2
    package var days = 60
    package var seed: UInt64 = 7
    package var startTs: Int64 = 1_700_000_000_000

    package init() {}
}

package enum TasteStream {
    package static func userId(_ u: Int) -> String { "u\(u)" }
    package static func itemId(_ i: Int) -> String { "i\(i)" }

    /// The stream's interactions, in time order.
    package static func events(_ c: TasteStreamConfig) -> [Interaction] {
        var rng = SplitMix64(seed: c.seed)
        // Items: topic of each item (topic sizes Zipf 0.7), within-topic rank popularity Zipf.
        let topicWeights = (0..<c.topics).map { 1 / pow(Double($0 + 1), 0.7) }
        var topicItems = [[Int]](repeating: [], count: c.topics)
        let topicSampler = Cumulative(topicWeights)
        for i in 0..<c.items { topicItems[topicSampler.draw(&rng)].append(i) }
        for t in 0..<c.topics where topicItems[t].isEmpty { topicItems[t].append(rng.nextInt(c.items)) }
        let topicSamplers = topicItems.map { items in Cumulative(items.indices.map { 1 / pow(Double($0 + 1), c.itemZipf) }) }
        // Global popularity: an item's weight = its topic's weight × its in-topic weight.
        var globalWeights = [Double](repeating: 0, count: c.items)
        for t in 0..<c.topics {
            for (rank, i) in topicItems[t].enumerated() { globalWeights[i] += topicWeights[t] / pow(Double(rank + 1), c.itemZipf) }
        }
        let global = Cumulative(globalWeights)
        // Users: tastes and activity.
        var tastes: [[(Int, Double)]] = []
        for _ in 0..<c.users {
            let k = 1 + rng.nextInt(c.maxTastes)
            var picks: [(Int, Double)] = []
            for _ in 0..<k { picks.append((topicSampler.draw(&rng), -log(max(rng.nextUnit(), 1e-12)))) }
            tastes.append(picks)
        }
        let activity = Cumulative((0..<c.users).map { 1 / pow(Double($0 + 1), c.userZipf) })
        // Bursts: (item, start, end) in stream position.
        let bursts = (0..<c.bursts).map { _ -> (Int, Int, Int) in
            let start = rng.nextInt(max(1, c.interactions))
            return (rng.nextInt(c.items), start, start + c.interactions / 100)
        }
        let span = Int64(c.days) * 86_400_000
        var events: [Interaction] = []
        events.reserveCapacity(c.interactions)
        // Sessions are laid out in time: each session a start time, events a few minutes apart.
        while events.count < c.interactions {
            let u = activity.draw(&rng)
            let taste = tastes[u]
            let total = taste.reduce(0) { $0 + $1.1 }
            var x = rng.nextUnit() * total
            var topic = taste[0].0
            for (t, w) in taste { if x < w { topic = t; break }; x -= w }
            var length = 1
            while rng.nextUnit() > 1 / c.meanSession && length < 50 { length += 1 }
            var ts = c.startTs + Int64(Double(span) * Double(events.count) / Double(c.interactions)) + Int64(rng.nextInt(3_600_000))
            for _ in 0..<length where events.count < c.interactions {
                let position = events.count
                var item: Int
                if let burst = bursts.first(where: { position >= $0.1 && position < $0.2 }), rng.nextUnit() < c.burstShare {
                    item = burst.0
                } else if rng.nextUnit() < c.globalShare {
                    item = global.draw(&rng)
                } else {
                    item = topicItems[topic][topicSamplers[topic].draw(&rng)]
                }
                let action: Action = rng.nextUnit() < c.skipShare ? .skip : [.click, .click, .watch, .like][rng.nextInt(4)]
                ts += 30_000 + Int64(rng.nextInt(240_000))
                events.append(Interaction(userId: userId(u), itemId: itemId(item), action: action, ts: ts))
            }
        }
        events.sort { $0.ts < $1.ts }
        return events
    }

    /// A JSON Lines rendering (DESIGN's interaction schema), for `freshet produce --file`.
    package static func jsonLine(_ e: Interaction) -> String { String(decoding: EventJSON.interaction(e), as: UTF8.self) }
}

/// Draws an index with probability proportional to its weight (binary search on the prefix sums).
struct Cumulative {
    let sums: [Double]
    init(_ weights: [Double]) {
        var s: [Double] = []
        s.reserveCapacity(weights.count)
        var acc = 0.0
        for w in weights { acc += w; s.append(acc) }
        sums = s
    }
    func draw(_ rng: inout SplitMix64) -> Int {
        let x = rng.nextUnit() * (sums.last ?? 0)
        var lo = 0, hi = sums.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if sums[mid] > x { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
