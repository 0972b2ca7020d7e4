import FreshetCore

/// Snapshot encoding of one user's state (format version 1):
/// `[1] count:zigzag updated_ms:zigzag n:varint (item:string ts:zigzag)*n`.
extension UserFeatureStore {
    static let entryFormat: UInt8 = 1

    /// The user's state as bytes, or nil when the user has none.
    public func encodeEntry(_ userId: String) -> [UInt8]? {
        guard let slot = lookup(userId) else { return nil }
        let s = states[Int(slot)]
        var w = ByteWriter(capacity: 16 + 16 * s.recent.count)
        w.write(byte: Self.entryFormat)
        w.write(zigzag: s.count)
        w.write(zigzag: s.updatedMs)
        w.write(varint: UInt64(s.recent.count))
        for e in s.recent.entries {
            w.write(string: itemNames[e.item])
            w.write(zigzag: e.ts)
        }
        return w.bytes
    }

    /// Replaces the user's state with a snapshot entry. Restored users are not
    /// marked dirty: their features were flushed before the snapshot was taken.
    public func restoreEntry(userId: String, bytes: some Collection<UInt8>) throws(CodecError) {
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
