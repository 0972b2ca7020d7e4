import Foundation
import FreshetRedis

extension FeatureOracle {
    /// How the features in `store` differ from the oracle's, one line per
    /// difference (at most `limit` per kind), empty when they are equal:
    /// every user and item hash exactly, one feature hash per entity, the
    /// trending top 500 by decayed count (exact up to ties at the boundary,
    /// in order), and the final watermark in `trending:meta`.
    /// - Throws: what reading the store throws.
    package func differences(from store: any FeatureStoreReading, limit: Int = 5) throws -> [String] {
        var problems: [String] = []
        var userMismatches: [String] = []
        for (userId, expected) in users {
            let fields = try Self.fields(store, "user:\(userId)")
            let recent = fields["recent_items_50"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] }
            if recent != expected.recent || fields["interaction_count"] != String(expected.count)
                || fields["updated_ms"] != String(expected.updated) {
                userMismatches.append("user \(userId): store \(fields) expected \(expected)")
            }
        }
        problems += userMismatches.prefix(limit)
        if userMismatches.count > limit { problems.append("... \(userMismatches.count - limit) more users differ") }
        let userKeys = try Self.countKeys(store, pattern: "user:*", withField: "interaction_count")
        if userKeys != users.count { problems.append("\(userKeys) user feature hashes, expected \(users.count)") }

        var itemMismatches: [String] = []
        for (itemId, expected) in items {
            let fields = try Self.fields(store, "item:\(itemId)")
            if fields["popularity_7d"] != String(expected.popularity) || fields["impressions_7d"] != String(expected.impressions)
                || fields["updated_ms"] != String(expected.updated) {
                itemMismatches.append("item \(itemId): store \(fields) expected \(expected)")
            }
        }
        problems += itemMismatches.prefix(limit)
        if itemMismatches.count > limit { problems.append("... \(itemMismatches.count - limit) more items differ") }
        let itemKeys = try Self.countKeys(store, pattern: "item:*", withField: "popularity_7d")
        if itemKeys != items.count { problems.append("\(itemKeys) item feature hashes, expected \(items.count)") }

        let members = (try store.command(["ZREVRANGE", "trending", "0", "-1"]).array ?? []).compactMap(\.string)
        let expectedTop = topTrending(500)
        if members.count != min(500, trending.count) {
            problems.append("trending holds \(members.count) members, expected \(min(500, trending.count))")
        }
        let boundary = expectedTop.last?.1 ?? 0
        let expectedSet = Set(expectedTop.map(\.0))
        for member in members where !expectedSet.contains(member) {
            let score = trending[member] ?? -1
            if abs(score - boundary) > boundary * 1e-9 {
                problems.append("\(member) in trending (decayed count \(score)) but not in the oracle's top 500")
            }
        }
        var previous = Double.infinity
        for member in members {
            let score = trending[member] ?? -1
            if score > previous * (1 + 1e-9) { problems.append("trending order differs at \(member)") }
            previous = score
        }
        let meta = try Self.fields(store, "trending:meta")
        if meta["watermark_ms"] != String(watermark) {
            problems.append("trending:meta watermark_ms \(meta["watermark_ms"] ?? "missing"), expected \(watermark)")
        }
        return problems
    }

    static func fields(_ store: any FeatureStoreReading, _ key: String) throws -> [String: String] {
        Dictionary(try store.hgetall(key).map { ($0.field, String(decoding: $0.value, as: UTF8.self)) },
                   uniquingKeysWith: { a, _ in a })
    }

    /// Keys matching `pattern` that hold `field` (embedding rows may exist for
    /// entities without features, e.g. an item only ever skipped).
    package static func countKeys(_ store: any FeatureStoreReading, pattern: String, withField field: String) throws -> Int {
        try store.keys(matching: pattern).filter { try store.command(["HEXISTS", $0, field]).int == 1 }.count
    }
}
