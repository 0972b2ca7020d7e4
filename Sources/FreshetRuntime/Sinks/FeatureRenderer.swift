import FreshetCore
import FreshetFeatures
import FreshetRedis

/// Turns the keys a task changed into absolute Redis writes in the documented layout.
///
/// Only keys that changed since the last flush are written, and always with
/// their full current value, never an increment: a replay after a crash
/// rewrites the same values, which is what makes the effect exactly-once.
package struct FeatureRenderer: Sendable {
    package let keys: RedisKeys
    package let trendingTopK: Int
    package let trending: TrendingDecay
    package let halfLifeMs: Int64
    /// Feast online-store rows, when the topology turns them on.
    package let feast: FeastRows?
    /// Whether Freshet's own `user:`/`item:` hashes are written (`feast.freshet_hashes`).
    package let freshetHashes: Bool

    /// Freshness is sampled: a few written keys per flush are plenty for percentiles.
    static let maxSamples = 64

    /// What one three-field `HSET` operation takes besides its key's and
    /// variable values' bytes: nine arguments' framing (`RESPCursor.maxBytes`),
    /// the field names, the op code, the field count and two integers.
    static let hashOperationBytes = 9 * RESPCursor.maxBytes(length: 0) + 1 + 1 + 17 + 15 + 10 + 2 * 20

    package init(keys: RedisKeys, trendingTopK: Int, trending: TrendingDecay, halfLifeMs: Int64,
                feast: FeastRows? = nil, freshetHashes: Bool = true) {
        self.keys = keys
        self.trendingTopK = trendingTopK
        self.trending = trending
        self.halfLifeMs = halfLifeMs
        self.feast = feast
        self.freshetHashes = freshetHashes || feast == nil
    }

    /// Writes the changed users (Freshet hashes and/or Feast rows, as
    /// configured); returns how many users were written. `counts` gets each
    /// written user's interaction count when `collectCounts` (the examples'
    /// serving feature; nobody reads it otherwise).
    @discardableResult
    package func renderUsers(_ store: UserFeatureStore, into write: inout FencedWrite, samples: inout [Int64],
                            counts: inout [(String, Int64)], collectCounts: Bool = true) -> Int {
        if feast == nil {
            // Freshet's hashes only: rendered straight from the store's slots,
            // each user's whole `HSET` written into the command in one
            // reservation (no key String, no number Strings, no field array,
            // one call per user instead of one per argument).
            var written = 0
            var userPrefix = keys.userPrefix
            userPrefix.withUTF8 { prefixUTF8 in
                let prefix = UnsafeRawBufferPointer(prefixUTF8)
                store.takeDirtyRendered { userId, recentJSON, count, updatedMs in
                    written += 1
                    if collectCounts { counts.append((userId, count)) }
                    var id = userId
                    id.withUTF8 { idUTF8 in
                        let bound = Self.hashOperationBytes + prefix.count + idUTF8.count + recentJSON.count
                        write.appendOperation(maxBytes: bound) { c in
                            c.bulk("H")
                            c.bulk(prefix, UnsafeRawBufferPointer(idUTF8))
                            c.bulk(3)
                            c.bulk("recent_items_50")
                            c.bulk(recentJSON)
                            c.bulk("interaction_count")
                            c.bulk(count)
                            c.bulk("updated_ms")
                            c.bulk(updatedMs)
                        }
                    }
                    if samples.count < Self.maxSamples { samples.append(updatedMs) }
                }
            }
            return written
        }
        let dirty = store.takeDirty()
        for userId in dirty {
            guard let features = store.features(of: userId) else { continue }
            counts.append((userId, features.interactionCount))
            if freshetHashes {
                write.hashSet(keys.user(userId), [
                    ("recent_items_50", UserFeatureStore.renderRecentItemsJSON(features.recentItems)),
                    ("interaction_count", String(features.interactionCount)),
                    ("updated_ms", String(features.updatedMs)),
                ])
            }
            if let feast { write.hashSet(rawKey: feast.userKey(userId), feast.userFields(features)) }
            if samples.count < Self.maxSamples { samples.append(features.updatedMs) }
        }
        return dirty.count
    }

    /// Writes the changed items, their trending scores, and trims the trending set.
    ///
    /// Trending scores are forward-decayed (log2 of the sum of 2^((ts - anchor)/H)),
    /// so an item's score only grows and never needs rewriting as time passes.
    /// That makes "ZADD the changed items, then trim to the top K" exact across
    /// tasks: an item in the true top K was added with its current score, and
    /// a trim only removes it when K items score higher, which they then still do.
    ///
    /// With `rewriteTrending` (a write to `trending` was refused: the key had
    /// another type; or the task was just assigned, and the key may have been
    /// deleted or evicted meanwhile), the task's whole top K is written again,
    /// not only its changed items: the refused scores were lost, and an item
    /// whose score rose meanwhile would otherwise stay out of the set, or low
    /// in it, until its next positive.
    @discardableResult
    package func renderItems(_ task: ItemTask, into write: inout FencedWrite, samples: inout [Int64],
                             rewriteTrending: Bool = false) -> Int {
        var trendingChanged = false
        var written = 0
        var itemPrefixString = keys.itemPrefix
        let trendingKey = keys.trending
        itemPrefixString.withUTF8 { itemPrefixUTF8 in
            let itemPrefix = UnsafeRawBufferPointer(itemPrefixUTF8)
            task.store.takeDirtyFeatures { itemId, features in
                written += 1
                if freshetHashes {
                    // Straight into the command in one reservation (as the users' hashes).
                    var id = itemId
                    id.withUTF8 { idUTF8 in
                        write.appendOperation(maxBytes: Self.hashOperationBytes + itemPrefix.count + idUTF8.count) { c in
                            c.bulk("H")
                            c.bulk(itemPrefix, UnsafeRawBufferPointer(idUTF8))
                            c.bulk(3)
                            c.bulk("popularity_7d")
                            c.bulk(features.popularity7d)
                            c.bulk("impressions_7d")
                            c.bulk(features.impressions7d)
                            c.bulk("updated_ms")
                            c.bulk(features.updatedMs)
                        }
                    }
                }
                if let feast { write.hashSet(rawKey: feast.itemKey(itemId), feast.itemFields(features)) }
                if samples.count < Self.maxSamples { samples.append(features.updatedMs) }
                if let score = features.trendingLog2Score {
                    write.sortedSetAdd(trendingKey, score: score, member: itemId)
                    trendingChanged = true
                }
            }
        }
        if rewriteTrending {
            for (itemId, score) in task.store.topTrending(trendingTopK) {
                write.sortedSetAdd(trendingKey, score: score, member: itemId)
                trendingChanged = true
            }
        }
        if trendingChanged {
            write.sortedSetTrim(keys.trending, keep: trendingTopK)
        }
        return written
    }

    /// `trending:meta`: how to read the scores, and the watermark they are as of.
    package func trendingMeta(watermark: EventTimeMs?, into write: inout FencedWrite) {
        var fields: [(String, String)] = [
            ("encoding", "log2_forward_decay"),
            ("formula", "decayed_count(W) = 2^(score - (W - anchor_ms) / half_life_ms)"),
            ("anchor_ms", String(trending.anchorMs)),
            ("half_life_ms", String(halfLifeMs)),
            ("top_k", String(trendingTopK)),
        ]
        if let watermark { fields.append(("watermark_ms", String(watermark))) }
        write.hashSet(keys.trendingMeta, fields)
    }
}
