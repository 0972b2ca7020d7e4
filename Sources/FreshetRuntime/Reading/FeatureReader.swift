import Foundation
import FreshetEmbeddings
import FreshetRedis

/// Reads features back the way a serving reader would, rendered as JSON.
/// Used by `freshet features`; blocking, one thread; one Redis or a cluster.
package struct FeatureReader {
    let connection: any RedisStore
    let keys: RedisKeys

    package init(store: any RedisStore, keys: RedisKeys) {
        self.connection = store
        self.keys = keys
    }

    package func userJSON(_ id: String) throws -> String {
        try render(hash: keys.user(id), idField: "user_id", id: id)
    }

    package func itemJSON(_ id: String) throws -> String {
        try render(hash: keys.item(id), idField: "item_id", id: id)
    }

    /// The trending set, highest first, with each score turned back into the
    /// decayed count at the watermark recorded in `trending:meta`.
    package func trendingJSON() throws -> String {
        let meta = Dictionary(try connection.hgetall(keys.trendingMeta).map { ($0.field, String(decoding: $0.value, as: UTF8.self)) },
                              uniquingKeysWith: { a, _ in a })
        let reply = try connection.run(RedisCommand("ZREVRANGE", keys.trending, "0", "-1", "WITHSCORES"))
        let parts = reply.array ?? []
        let anchor = meta["anchor_ms"].flatMap(Double.init) ?? 0
        let halfLife = meta["half_life_ms"].flatMap(Double.init) ?? 3_600_000
        let watermark = meta["watermark_ms"].flatMap(Double.init)
        var items: [[String: Any]] = []
        var index = 0
        while index + 1 < parts.count {
            let member = parts[index].string ?? ""
            let score = parts[index + 1].string.flatMap(Double.init) ?? 0
            var entry: [String: Any] = ["item_id": member, "log2_score": score]
            if let watermark {
                entry["decayed_count"] = pow(2, score - (watermark - anchor) / halfLife)
            }
            items.append(entry)
            index += 2
        }
        var object: [String: Any] = ["items": items]
        for (key, value) in meta { object[key] = Int64(value) ?? value as Any }
        return try Self.json(object)
    }

    private func render(hash key: String, idField: String, id: String) throws -> String {
        let fields = try connection.hgetall(key)
        var object: [String: Any] = [idField: id]
        if fields.isEmpty {
            object["found"] = false
            return try Self.json(object)
        }
        for (field, value) in fields {
            if Self.isEmbeddingVectorField(field) {
                object[field] = EmbeddingBlob.decode(value)
                continue
            }
            let text = String(decoding: value, as: UTF8.self)
            if field == "recent_items_50", let data = text.data(using: .utf8),
               let array = try? JSONSerialization.jsonObject(with: data) {
                object[field] = array
            } else if let number = Int64(text) {
                object[field] = number
            } else {
                object[field] = text
            }
        }
        return try Self.json(object)
    }

    /// True for the vector fields `embedding_<dimension>d` (float32 blobs);
    /// other fields, `embedding_kind` among them, are text or numbers.
    package static func isEmbeddingVectorField(_ field: String) -> Bool {
        let prefix = "embedding_"
        guard field.hasPrefix(prefix), field.hasSuffix("d") else { return false }
        let digits = field.utf8.dropFirst(prefix.utf8.count).dropLast()
        return !digits.isEmpty && digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    static func json(_ object: [String: Any]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        return String(decoding: data, as: UTF8.self)
    }
}
