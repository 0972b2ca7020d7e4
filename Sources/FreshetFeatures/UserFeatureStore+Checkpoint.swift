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
        w.write(byte: Self.entryFormat)
        w.write(zigzag: states[i].count)
        w.write(zigzag: states[i].updatedMs)
        w.write(varint: UInt64(states[i].recent.count))
        // Ids' bytes from `itemBytes`: the same bytes `write(string:)` of the
        // interned `String` writes.
        itemBytes.sync(with: itemNames)
        states[i].recent.entries.withUnsafeBufferPointer { entries in
            itemBytes.withView { names in
                for e in entries {
                    let id = names.id(e.item).bytes
                    w.write(varint: UInt64(id.count))
                    w.bytes.append(contentsOf: id)
                    w.write(zigzag: e.ts)
                }
            }
        }
        return states[i].id
    }

    /// Replaces the user's state with a snapshot entry. Restored users are not
    /// marked dirty: their features were flushed before the snapshot was taken.
    package func restoreEntry(userId: String, bytes: some Collection<UInt8>) throws(CodecError) {
        var r = ByteReader(bytes)
        let format = try r.readByte("user entry format")
        guard format == Self.entryFormat else {
            throw CodecError(.unknownVersion, "user entry format \(format) for '\(userId)'; expected \(Self.entryFormat)")
        }
        var state = UserState(id: userId)
        state.count = try r.readZigzag("user entry interaction_count")
        state.updatedMs = try r.readZigzag("user entry updated_ms")
        let n = try r.readVarint("user entry recent item count")
        guard n <= UInt64(recentCapacity) else {
            throw CodecError(.invalidValue, "user entry for '\(userId)' has \(n) recent items, capacity \(recentCapacity)")
        }
        for _ in 0..<n {
            let item = try r.readString("user entry recent item id")
            let ts = try r.readZigzag("user entry recent item ts")
            state.recent.appendRestored(itemNames.intern(item), ts: ts)
        }
        try r.expectEnd("user entry '\(userId)'")
        let slot = self.slot(for: userId)
        state.dirtyFlags = states[Int(slot)].dirtyFlags // the slot may already be listed as dirty
        states[Int(slot)] = state
    }
}
