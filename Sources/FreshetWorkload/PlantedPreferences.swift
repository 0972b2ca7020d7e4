import FreshetCore
import FreshetEmbeddings
import Foundation // pow only; all randomness is FreshetCore's seeded SplitMix64

/// Configuration of a planted-preference stream: users and items drawn from K known
/// clusters; each user prefers its cluster's items with probability
/// `inClusterProbability`, otherwise picks by global popularity. Item popularity is
/// Zipf-skewed (exponent `zipfExponent`) so a popularity baseline is non-trivial.
package struct PlantedConfig: Sendable, Equatable {
    package var users: Int
    package var items: Int
    package var clusters: Int
    /// Interaction events (impressions, when enabled, come on top).
    package var events: Int
    package var inClusterProbability: Double
    package var zipfExponent: Double
    /// Fraction of interactions that are `skip`s (on an item outside the user's cluster).
    package var skipFraction: Double
    /// Emit an impression (with `itemsPerImpression` items, the engaged one among them)
    /// before each interaction.
    package var impressions: Bool
    package var itemsPerImpression: Int
    package var seed: UInt64
    package var startTs: Int64
    /// Mean event-time gap between consecutive requests.
    package var meanGapMs: Int64

    package init(users: Int = 2000, items: Int = 500, clusters: Int = 8, events: Int = 60_000,
                inClusterProbability: Double = 0.8, zipfExponent: Double = 0.8, skipFraction: Double = 0.05,
                impressions: Bool = false, itemsPerImpression: Int = 5, seed: UInt64 = 1,
                startTs: Int64 = 1_732_700_000_000, meanGapMs: Int64 = 1000) {
        self.users = users; self.items = items; self.clusters = clusters; self.events = events
        self.inClusterProbability = inClusterProbability; self.zipfExponent = zipfExponent
        self.skipFraction = skipFraction; self.impressions = impressions
        self.itemsPerImpression = itemsPerImpression; self.seed = seed; self.startTs = startTs
        self.meanGapMs = meanGapMs
    }
}

/// The planted world (ground truth) and its event generator.
package struct PlantedPreferences: Sendable {
    package let config: PlantedConfig
    /// Cluster of each user / item (index = numeric id).
    package let userCluster: [Int]
    package let itemCluster: [Int]
    /// Unnormalised popularity weight of each item.
    package let itemWeight: [Double]
    let clusterItems: [[Int]]
    let clusterCumulative: [[Double]]
    let globalCumulative: [Double]
    let userCumulative: [Double]

    package init(_ config: PlantedConfig) {
        precondition(config.users > 0 && config.items > 0 && config.clusters > 0)
        self.config = config
        var rng = SplitMix64(seed: config.seed ^ 0xC1A5_7E25)
        userCluster = (0..<config.users).map { _ in rng.nextInt(config.clusters) }
        itemCluster = (0..<config.items).map { $0 % config.clusters }
        // Zipf weights over a random permutation of the items.
        var perm = Array(0..<config.items)
        for a in stride(from: perm.count - 1, to: 0, by: -1) { perm.swapAt(a, rng.nextInt(a + 1)) }
        var w = [Double](repeating: 0, count: config.items)
        for (rank, item) in perm.enumerated() { w[item] = 1 / Foundation.pow(Double(rank + 1), config.zipfExponent) }
        itemWeight = w
        var ci = [[Int]](repeating: [], count: config.clusters)
        for i in 0..<config.items { ci[itemCluster[i]].append(i) }
        clusterItems = ci
        clusterCumulative = ci.map { cumulative($0.map { w[$0] }) }
        globalCumulative = cumulative(w)
        // Mildly skewed user activity.
        userCumulative = cumulative((0..<config.users).map { _ in 0.5 + rng.nextUnit() })
    }

    package static func userId(_ u: Int) -> String { "u\(u)" }
    package static func itemId(_ i: Int) -> String { "i\(i)" }

    /// All events, in time order.
    package func inputEvents() -> [InputEvent] { Array(PlantedEventIterator(self)) }

    /// The stream as JSONL (one event per line, time order).
    package func jsonLines() -> String {
        var out = ""
        for e in PlantedEventIterator(self) { out += String(decoding: EventJSON.bytes(e), as: UTF8.self); out += "\n" }
        return out
    }

    package var stream: PlantedStream { PlantedStream(self) }
}

private func cumulative(_ w: [Double]) -> [Double] {
    var acc = 0.0
    return w.map { acc += $0; return acc }
}

private func pick(_ cum: [Double], _ u: Double) -> Int {
    let x = u * cum[cum.count - 1]
    var lo = 0, hi = cum.count - 1
    while lo < hi { let mid = (lo + hi) / 2; if cum[mid] > x { hi = mid } else { lo = mid + 1 } }
    return lo
}

/// Iterator over the planted events in time order.
package struct PlantedEventIterator: IteratorProtocol, Sequence {
    let world: PlantedPreferences
    var rng: SplitMix64
    var produced = 0
    var ts: Int64
    var queued: InputEvent?
    var userItems: [Set<Int>]

    init(_ world: PlantedPreferences) {
        self.world = world
        rng = SplitMix64(seed: world.config.seed ^ 0xE7E7_E7E7)
        ts = world.config.startTs
        userItems = [Set<Int>](repeating: [], count: world.config.users)
    }

    package mutating func next() -> InputEvent? {
        if let q = queued { queued = nil; return q }
        let c = world.config
        guard produced < c.events else { return nil }
        produced += 1
        ts += 1 + Int64(rng.nextInt(Int(Swift.max(1, 2 * c.meanGapMs))))
        let u = pick(world.userCumulative, rng.nextUnit())
        let skip = rng.nextUnit() < c.skipFraction
        var item = 0
        for _ in 0..<8 {
            if skip {
                item = pick(world.globalCumulative, rng.nextUnit())
                if world.itemCluster[item] != world.userCluster[u] { break }
            } else if rng.nextUnit() < c.inClusterProbability {
                let cl = world.userCluster[u]
                item = world.clusterItems[cl][pick(world.clusterCumulative[cl], rng.nextUnit())]
                if !userItems[u].contains(item) { break }
            } else {
                item = pick(world.globalCumulative, rng.nextUnit())
                if !userItems[u].contains(item) { break }
            }
        }
        userItems[u].insert(item)
        let action: Action
        if skip { action = .skip } else {
            let a = rng.nextUnit()
            action = a < 0.6 ? .click : a < 0.85 ? .watch : a < 0.95 ? .like : .share
        }
        let dwell: Int64 = skip ? Int64(rng.nextInt(1500)) : 2000 + Int64(rng.nextInt(60_000))
        let request = "r\(produced)"
        let interaction = InputEvent.interaction(Interaction(userId: PlantedPreferences.userId(u), itemId: PlantedPreferences.itemId(item),
                                                             action: action, dwellMs: dwell, ts: ts + 500, requestId: request))
        guard c.impressions else { ts += 500; return interaction }
        var shown = [item]
        while shown.count < Swift.max(1, c.itemsPerImpression) {
            let j = pick(world.globalCumulative, rng.nextUnit())
            if !shown.contains(j) { shown.append(j) } else if shown.count >= c.items { break }
        }
        // The engaged item at a random position.
        shown.swapAt(0, rng.nextInt(shown.count))
        queued = interaction
        let impression = InputEvent.impression(Impression(requestId: request, userId: PlantedPreferences.userId(u),
                                                          itemsShown: shown.map(PlantedPreferences.itemId),
                                                          positions: shown.indices.map { Int32($0) }, ts: ts))
        ts += 500
        return impression
    }
}

/// The planted stream as Kafka records for `freshet produce`: topic
/// ("interactions" | "impressions"), key (the user id) and the JSON value.
package struct PlantedStream: Sequence {
    package typealias Element = (topic: String, key: String, json: [UInt8])
    let world: PlantedPreferences

    package init(_ world: PlantedPreferences) { self.world = world }
    package init(_ config: PlantedConfig) { self.world = PlantedPreferences(config) }

    package struct Iterator: IteratorProtocol {
        var inner: PlantedEventIterator
        package mutating func next() -> Element? {
            guard let e = inner.next() else { return nil }
            return (e.topic, e.userId, EventJSON.bytes(e))
        }
    }

    package func makeIterator() -> Iterator { Iterator(inner: PlantedEventIterator(world)) }
}
