import FreshetCore

extension UserFeatureStore {
    /// Renders `recent_items_50`: a JSON array of JSON strings (ids are always
    /// emitted as strings, even when they arrived as integers), escaped per RFC 8259.
    package static func renderRecentItemsJSON(_ items: [String]) -> String {
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(2 + items.count * 12)
        for (k, item) in items.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            JSONEscape.appendString(item, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    /// `recent_items_50` of the user in `slot`, rendered from the interned
    /// names directly (no intermediate array of ids).
    func recentItemsJSON(slot: Int) -> String {
        var out: [UInt8] = []
        appendRecentItemsJSON(slot: slot, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `recent_items_50` of the user in `slot` as UTF-8 bytes to `out`.
    func appendRecentItemsJSON(slot: Int, to out: inout [UInt8]) {
        let entries = states[slot].recent.entries
        out.reserveCapacity(out.count + 2 + entries.count * 12)
        out.append(UInt8(ascii: "["))
        for (k, e) in entries.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            JSONEscape.appendString(itemNames[e.item], to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    /// Each user changed since the previous `takeDirty`, with what the Redis
    /// hash holds: `recent_items_50` rendered as UTF-8 JSON bytes (valid only
    /// during the call: one buffer is reused for every user), the count and
    /// `updated_ms`. The same users `takeDirty` returns, without looking each
    /// id up again and without a `String` per user.
    package func takeDirtyRendered(_ body: (_ userId: String, _ recentItemsJSON: [UInt8], _ interactionCount: Int64,
                                           _ updatedMs: EventTimeMs) -> Void) {
        let slots = dirty.takeFlush()
        var json: [UInt8] = []
        json.reserveCapacity(1024)
        for s in slots {
            let i = Int(s)
            states[i].dirtyFlags &= ~DirtyTracker.flushBit
            json.removeAll(keepingCapacity: true)
            appendRecentItemsJSON(slot: i, to: &json)
            body(states[i].id, json, states[i].count, states[i].updatedMs)
        }
    }
}
