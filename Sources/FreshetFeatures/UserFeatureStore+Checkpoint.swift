import FreshetCore

/// Snapshot encoding of one user's state (format version 1):
/// `[1] count:zigzag updated_ms:zigzag n:varint (item:string ts:zigzag)*n`.
extension UserFeatureStore {
    static let entryFormat: UInt8 = 1

    /// The user's state as bytes, or nil when the user has none.
    package func encodeEntry(_ userId: String) -> [UInt8]? {
        guard let slot = lookup(userId) else { return nil }
        itemBytes.sync(with: itemNames)
        var w = ByteWriter(capacity: 16 + 16 * states[Int(slot)].recent.count)
        _ = appendCheckpointEntry(slot: slot, to: &w)
        return w.bytes
    }

    /// The slots of the users changed since the last checkpoint, in first-change
    /// order (handles for `appendCheckpointEntry`); independent of the flush's list.
    package func takeChangedSlotsForCheckpoint() -> [UInt32] {
        itemBytes.sync(with: itemNames)
        let slots = dirty.takeCheckpoint()
        for s in slots { states[Int(s)].dirtyFlags &= ~DirtyTracker.checkpointBit }
        return slots
    }

    /// Appends the entry of the user in `slot` (from `takeChangedSlotsForCheckpoint`)
    /// to `w`, the same bytes `encodeEntry` returns, and returns the user's id.
    /// A checkpoint encodes thousands of entries into one reused writer this way
    /// (no array and no id lookup per entry).
    package func appendCheckpointEntry(slot: UInt32, to w: inout ByteWriter) -> String {
        let i = Int(slot)
        // Ids' bytes from `itemBytes`: the same bytes `write(string:)` of the
        // interned `String` writes.
        itemBytes.sync(with: itemNames)
        let (count, updatedMs) = (states[i].count, states[i].updatedMs)
        states[i].recent.entries.withUnsafeBufferPointer { entries in
            itemBytes.withView { names in
                // The entry's size bound first (ids' lengths, varints at their
                // longest), then one scratch write with plain stores: appending
                // each of ~50 ids' three parts to the array (a uniqueness and
                // capacity check each) was most of a checkpoint's user encoding.
                var bound = 1 &+ 3 &* RawByteCursor.maxVarintBytes
                for e in entries { bound &+= names.id(e.item).bytes.count &+ 2 &* RawByteCursor.maxVarintBytes }
                w.append(maxBytes: bound) { c in
                    c.write(byte: Self.entryFormat)
                    c.write(zigzag: count)
                    c.write(zigzag: updatedMs)
                    c.write(varint: UInt64(entries.count))
                    for e in entries {
                        c.write(bytes: names.id(e.item).bytes)
                        c.write(zigzag: e.ts)
                    }
                }
            }
        }
        return states[i].id
    }

    /// Replaces the user's state with a snapshot entry. Restored users are not
    /// marked dirty: their features were flushed before the snapshot was taken.
    /// - Throws: `CodecError` for an entry of another format, a truncated or
    ///   trailing byte, an id that is not UTF-8, or more recent items than the
    ///   store keeps.
    package func restoreEntry(userId: String, bytes: some Collection<UInt8>) throws(CodecError) {
        try restoreEntry(userId: userId, bytes: Array(bytes))
    }

    /// `restoreEntry` of an entry as read from Redis, read in place. The
    /// recent items' ids are interned as one batch
    /// (`StringInterner.intern(validUTF8:into:)`): a restore interns ten per
    /// user, and one by one their cache misses were most of its time.
    package func restoreEntry(userId: String, bytes: [UInt8]) throws(CodecError) {
        var state = UserState(id: userId)
        // `Array.withUnsafeBytes` rethrows untyped: the error comes out as a `Result`.
        let outcome: Result<Void, CodecError> = bytes.withUnsafeBytes { raw in
            do throws(CodecError) {
                try readEntry(raw, into: &state)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try outcome.get()
        let slot = self.slot(for: userId)
        state.dirtyFlags = states[Int(slot)].dirtyFlags // the slot may already be listed as dirty
        states[Int(slot)] = state
    }

    /// Reads an entry's fields into `state` (its id set by the caller).
    private func readEntry(_ raw: UnsafeRawBufferPointer, into state: inout UserState) throws(CodecError) {
        let userId = state.id
        var r = BorrowedByteReader(raw)
        let format = try r.readByte("user entry format")
        guard format == Self.entryFormat else {
            throw CodecError(.unknownVersion, "user entry format \(format) for '\(userId)'; expected \(Self.entryFormat)")
        }
        state.count = try r.readZigzag("user entry interaction_count")
        state.updatedMs = try r.readZigzag("user entry updated_ms")
        let n = try r.readVarint("user entry recent item count")
        guard n <= UInt64(recentCapacity) else {
            throw CodecError(.invalidValue, "user entry for '\(userId)' has \(n) recent items, capacity \(recentCapacity)")
        }
        let count = Int(n)
        try withUnsafeTemporaryAllocation(of: UnsafeRawBufferPointer.self, capacity: count) { ids throws(CodecError) in
            try withUnsafeTemporaryAllocation(of: Int64.self, capacity: count) { times throws(CodecError) in
                for k in 0..<count {
                    ids.initializeElement(at: k, to: try r.readUTF8("user entry recent item id"))
                    times.initializeElement(at: k, to: try r.readZigzag("user entry recent item ts"))
                }
                try r.expectEnd("user entry '\(userId)'")
                withUnsafeTemporaryAllocation(of: UInt32.self, capacity: count) { numbers in
                    itemNames.intern(validUTF8: UnsafeBufferPointer(ids), into: numbers)
                    for k in 0..<count { state.recent.appendRestored(numbers[k], ts: times[k]) }
                }
            }
        }
    }
}
