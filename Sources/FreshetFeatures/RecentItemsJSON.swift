import CPrefetch
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

    /// Each user changed since the previous `takeDirty`, with what the Redis
    /// hash holds: `recent_items_50` rendered as UTF-8 JSON bytes (valid only
    /// during the call), the count and `updated_ms`. The same users
    /// `takeDirty` returns, without looking each id up again and without a
    /// `String` per user. `body` must not call into this store (its states
    /// are borrowed for the whole loop).
    ///
    /// Each list is written into scratch space with plain stores, its size
    /// counted first (a list with an id that needs JSON escapes, rare, is
    /// appended id by id into an array): appending every list id by id
    /// (three `append`s an id, each a uniqueness and capacity check, and a
    /// retain of the arrays per user) was most of the flush's user
    /// rendering, itself ~15% of the processing thread.
    package func takeDirtyRendered(_ body: (_ userId: String, _ recentItemsJSON: UnsafeRawBufferPointer,
                                           _ interactionCount: Int64, _ updatedMs: EventTimeMs) -> Void) {
        let slots = dirty.takeFlush()
        itemBytes.sync(with: itemNames)
        var escaped: [UInt8] = []
        itemBytes.withView { names in
            states.withUnsafeMutableBufferPointer { states in
                guard let base = states.baseAddress else { return }
                for (k, s) in slots.enumerated() {
                    // The users a few places ahead: their state now, their list
                    // once that state has arrived (two cache misses a user,
                    // two thirds of this loop's samples when taken in turn).
                    if k &+ Self.prefetchStates < slots.count {
                        freshet_prefetch(base + Int(slots[k &+ Self.prefetchStates]))
                    }
                    if k &+ Self.prefetchLists < slots.count {
                        states[Int(slots[k &+ Self.prefetchLists])].recent.prefetchEntries()
                    }
                    let i = Int(s)
                    states[i].dirtyFlags &= ~DirtyTracker.flushBit
                    let (id, count, updatedMs) = (states[i].id, states[i].count, states[i].updatedMs)
                    states[i].recent.entries.withUnsafeBufferPointer { entries in
                        Self.withRecentItemsJSON(entries, names: names, escaped: &escaped) { body(id, $0, count, updatedMs) }
                    }
                }
            }
        }
    }

    /// How far ahead `takeDirtyRendered` asks for a user's state, and for its list.
    private static let prefetchStates = 8
    private static let prefetchLists = 4

    /// `recent_items_50` of `entries` in scratch space, handed to `body`.
    @inline(__always)
    private static func withRecentItemsJSON(_ entries: UnsafeBufferPointer<RecentEntry>, names: ItemNameBytes.View,
                                            escaped: inout [UInt8], _ body: (UnsafeRawBufferPointer) -> Void) {
        // Brackets, commas, and each id between quotes.
        var size = 2 &+ max(0, entries.count &- 1)
        var plain = true
        for e in entries {
            let id = names.id(e.item)
            size &+= id.bytes.count &+ 2
            if id.needsEscape { plain = false }
        }
        guard plain else {
            escaped.removeAll(keepingCapacity: true)
            escaped.append(UInt8(ascii: "["))
            for (k, e) in entries.enumerated() {
                if k > 0 { escaped.append(UInt8(ascii: ",")) }
                JSONEscape.appendString(utf8: names.id(e.item).bytes.assumingMemoryBound(to: UInt8.self), to: &escaped)
            }
            escaped.append(UInt8(ascii: "]"))
            escaped.withUnsafeBytes(body)
            return
        }
        withUnsafeTemporaryAllocation(byteCount: size &+ ItemNameBytes.View.copySlack, alignment: 1) { out in
            guard let base = out.baseAddress else { return }
            let quote = UInt8(ascii: "\"")
            base.storeBytes(of: UInt8(ascii: "["), as: UInt8.self)
            var w = 1
            for (k, e) in entries.enumerated() {
                if k > 0 {
                    base.storeBytes(of: UInt8(ascii: ","), toByteOffset: w, as: UInt8.self)
                    w &+= 1
                }
                base.storeBytes(of: quote, toByteOffset: w, as: UInt8.self)
                w &+= names.copy(e.item, to: base + (w &+ 1)) &+ 1
                base.storeBytes(of: quote, toByteOffset: w, as: UInt8.self)
                w &+= 1
            }
            base.storeBytes(of: UInt8(ascii: "]"), toByteOffset: w, as: UInt8.self)
            body(UnsafeRawBufferPointer(start: base, count: size))
        }
    }
}
