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
        itemBytes.sync(with: itemNames)
        var out: [UInt8] = []
        appendRecentItemsJSON(slot: slot, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `recent_items_50` of the user in `slot` as UTF-8 bytes to `out`:
    /// each id's bytes are copied from `itemBytes`.
    func appendRecentItemsJSON(slot: Int, to out: inout [UInt8]) {
        itemBytes.sync(with: itemNames)
        let quote = UInt8(ascii: "\"")
        states[slot].recent.entries.withUnsafeBufferPointer { entries in
            itemBytes.bytes.withUnsafeBufferPointer { arena in
                out.reserveCapacity(out.count + 2 + entries.count * 12)
                out.append(UInt8(ascii: "["))
                for k in entries.indices {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    let r = itemBytes.range(entries[k].item)
                    let id = UnsafeBufferPointer(rebasing: arena[r.start..<r.end])
                    if r.needsEscape {
                        JSONEscape.appendString(utf8: id, to: &out)
                    } else {
                        out.append(quote)
                        out.append(contentsOf: id)
                        out.append(quote)
                    }
                }
                out.append(UInt8(ascii: "]"))
            }
        }
    }

    /// Each user changed since the previous `takeDirty`, with what the Redis
    /// hash holds: `recent_items_50` rendered as UTF-8 JSON bytes (valid only
    /// during the call: one buffer is reused for every user), the count and
    /// `updated_ms`. The same users `takeDirty` returns, without looking each
    /// id up again and without a `String` per user.
    package func takeDirtyRendered(_ body: (_ userId: String, _ recentItemsJSON: [UInt8], _ interactionCount: Int64,
                                           _ updatedMs: EventTimeMs) -> Void) {
        let slots = dirty.takeFlush()
        itemBytes.sync(with: itemNames)
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
