import FreshetCore

/// Read-only views of users' recent items for the embeddings (issue 7): a
/// user's embedding history is the head of `recent_items_50`, the list serving
/// reads, so the embeddings keep no per-user state or checkpoint of their own.
/// Nothing here changes the store.
extension UserFeatureStore {
    /// The first `limit` recent items of a user (newest first, as in
    /// `recent_items_50`); empty for an unknown user.
    package func recentItemIds(of userId: String, limit: Int) -> [String] {
        guard let slot = lookup(userId) else { return [] }
        let entries = states[Int(slot)].recent.entries
        return entries.prefix(limit).map { itemNames[$0.item] }
    }

    /// The same items encoded as a routed record's user-history extension
    /// (`ItemEvent.userHistoryEncoded`: count varint, then each id's UTF-8
    /// length varint and bytes), written straight from the interned names:
    /// no array of `String`s per positive (the user stage's hot path). Empty
    /// for an unknown user or one with no recent items.
    package func encodedRecentItems(of userId: String, limit: Int) -> [UInt8] {
        guard let slot = lookup(userId) else { return [] }
        var out = ByteWriter(capacity: 0)
        encodeRecentItems(slot: slot, limit: limit, into: &out)
        return out.bytes
    }

    /// The slot of a user given as valid UTF-8 bytes, nil for a user with no
    /// state (nothing is inserted). Slots are dense (`0..<userCount`) and
    /// stable while the store lives, so the embeddings' user side keeps its
    /// per-user marks in arrays indexed by slot instead of by id.
    @inline(__always)
    package func userSlot(validUTF8 userId: UnsafeRawBufferPointer) -> UInt32? {
        slotOf.slot(tag: slotOf.tag(bytes: userId)) { IdBytes.equal(states[Int($0)].id, bytes: userId) }
    }

    /// The slot of a user id, nil for a user with no state.
    package func userSlot(_ userId: String) -> UInt32? { lookup(userId) }

    /// The id of the user in `slot` (`0..<userCount`).
    package func userId(slot: UInt32) -> String { states[Int(slot)].id }

    /// Replaces `out`'s contents with `encodedRecentItems(of:limit:)` for the
    /// user in `slot` (`0..<userCount`), reusing its storage (the user stage's hot path: one buffer for every
    /// positive instead of an array each). The ids are copied from
    /// `itemBytes` (one `memcpy` each), not read from the interner's
    /// `String`s (a retain, a UTF-8 view and a copy each).
    package func encodeRecentItems(slot: UInt32, limit: Int, into out: inout ByteWriter) {
        out.bytes.removeAll(keepingCapacity: true)
        states[Int(slot)].recent.entries.withUnsafeBufferPointer { entries in
            let n = min(limit, entries.count)
            guard n > 0 else { return }
            itemBytes.sync(with: itemNames)
            // The ids' lengths first (they bound the record), then one append
            // of plain stores: per-id `append`s (a uniqueness and capacity
            // check each, two per id) were most of this function.
            itemBytes.withView { names in
                var idBytes = 0
                for k in 0..<n { idBytes &+= names.id(entries[k].item).bytes.count }
                out.append(maxBytes: RawByteCursor.maxVarintBytes * (n + 1) + idBytes) { c in
                    c.write(varint: UInt64(n))
                    for k in 0..<n { c.write(bytes: names.id(entries[k].item).bytes) }
                }
            }
        }
    }

    /// `withRecentNumbers(of:limit:_:)` for the user in `slot` (`0..<userCount`).
    package func withRecentNumbers(slot: UInt32, limit: Int, _ body: (UnsafeBufferPointer<UInt32>) -> Void) {
        visit(Int(slot), limit: limit, body)
    }

    /// Item names interned so far (numbers `0..<internedItemCount`).
    package var internedItemCount: Int { itemNames.count }

    /// The item id of an interned number (`0..<internedItemCount`).
    package func internedItem(_ number: UInt32) -> String { itemNames[number] }

    /// Calls `body` with the interned numbers of the first `limit` recent items
    /// of `userId` (newest first); returns false for an unknown user.
    @discardableResult
    package func withRecentNumbers(of userId: String, limit: Int, _ body: (UnsafeBufferPointer<UInt32>) -> Void) -> Bool {
        guard let slot = lookup(userId) else { return false }
        visit(Int(slot), limit: limit, body)
        return true
    }

    /// `forEachUserRecentNumbers` with the user's slot instead of its id (no
    /// `String` retained per user).
    @discardableResult
    package func forEachSlotRecentNumbers(from start: Int = 0, count: Int = .max, limit: Int,
                                         _ body: (UInt32, UnsafeBufferPointer<UInt32>) -> Void) -> Int {
        let end = start + min(count, max(0, states.count - start))
        guard start < end else { return max(start, states.count) }
        for i in start..<end { visit(i, limit: limit) { body(UInt32(i), $0) } }
        return end
    }

    /// Calls `body(userId, numbers)` for the users with state at positions
    /// `start..<start + count` (in slot order; numbers as in
    /// `withRecentNumbers`), so a caller can walk every user in slices.
    /// Returns the position after the last one visited (`userCount` when done).
    @discardableResult
    package func forEachUserRecentNumbers(from start: Int = 0, count: Int = .max, limit: Int,
                                         _ body: (String, UnsafeBufferPointer<UInt32>) -> Void) -> Int {
        let end = start + min(count, max(0, states.count - start))
        guard start < end else { return max(start, states.count) }
        for i in start..<end { visit(i, limit: limit) { body(states[i].id, $0) } }
        return end
    }

    /// Users with state (positions `0..<userCount` for `forEachUserRecentNumbers`).
    package var userCount: Int { states.count }

    private func visit(_ i: Int, limit: Int, _ body: (UnsafeBufferPointer<UInt32>) -> Void) {
        let entries = states[i].recent.entries
        let n = min(limit, entries.count)
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: max(1, n)) { buffer in
            for k in 0..<n { buffer[k] = entries[k].item }
            body(UnsafeBufferPointer(rebasing: buffer[0..<n]))
        }
    }
}
