import FreshetCore

extension ItemFeatureStore {
    /// The `k` items with the highest trending scores (log2, as written to
    /// the `trending` sorted set), highest first. Equal scores rank as Redis
    /// ranks them, by member bytes, the larger higher, so these are the
    /// members a trim to `k` keeps. Items with no positive have no score.
    ///
    /// Rewriting these restores this task's share of the set after writes
    /// to it were refused (the set's top K is within the union of every
    /// task's top K). O(n log n) in the items with a score: rare, not per flush.
    package func topTrending(_ k: Int) -> [(itemId: String, log2Score: Double)] {
        guard k > 0 else { return [] }
        var scored = states.indices.filter { states[$0].trending > -.infinity }
        scored.sort { a, b in
            let x = states[a].trending, y = states[b].trending
            return x != y ? x > y : IdBytes.less(states[b].id, states[a].id)
        }
        return scored.prefix(k).map { (states[$0].id, states[$0].trending) }
    }
}
