import FreshetCore
import HeapModule

/// The joiner's state as bytes, so an item task's open join windows and
/// tombstones survive a crash or a move to another instance (the meta field
/// `join_state`, written whole at every checkpoint, as `join_features` is).
///
/// Without it, a restored item task forgot every impression whose window was
/// open at its checkpoint: their no-engagement negatives were never emitted
/// and their positives came out without the impression's context.
///
/// Layout (FreshetCore's varints): format byte 1; the watermark (zigzag); the
/// sequence counter (varint); the entry count (varint); then per entry, in
/// the order they were recorded (`seq`): user id, item id (length-prefixed
/// UTF-8), impression time (zigzag), flags (byte: `JoinEntry`'s bits, plus
/// 16 when a request id follows), seq (varint), the position (zigzag, when
/// flagged), the three serving features (zigzag, when flagged), the request id.
/// Deadlines are not stored: a pending entry closes at impression time +
/// window, a tombstone expires `lateTTL` after that, so `restore` rebuilds both heaps.
extension ImpressionJoiner {
    static let checkpointFormat: UInt8 = 1
    private static let hasRequest: UInt8 = 16

    /// The whole state, in `restore`'s form.
    package func encode() -> [UInt8] {
        var held: [(key: UInt64, entry: JoinEntry)] = []
        held.reserveCapacity(entries.count)
        entries.forEach { held.append(($0, $1)) }
        // Recording order (seq wraps only after 2^32 impressions of the same
        // key's lifetime): a restored joiner then assigns the same order.
        held.sort { $0.entry.seq < $1.entry.seq }
        var w = ByteWriter(capacity: 16 + held.count * 40)
        w.write(byte: Self.checkpointFormat)
        w.write(zigzag: watermark)
        w.write(varint: UInt64(seq))
        w.write(varint: UInt64(held.count))
        for (key, entry) in held {
            w.write(string: users[UInt32(truncatingIfNeeded: key >> 32)])
            w.write(string: items[UInt32(truncatingIfNeeded: key)])
            w.write(zigzag: entry.impressionTs)
            w.write(byte: entry.flags | (entry.request != 0 ? Self.hasRequest : 0))
            w.write(varint: UInt64(entry.seq))
            if entry.has(JoinEntry.hasPosition) { w.write(zigzag: Int64(entry.position)) }
            if entry.has(JoinEntry.hasFeatures) {
                w.write(zigzag: entry.interactionCount)
                w.write(zigzag: entry.popularity7d)
                w.write(zigzag: entry.impressions7d)
            }
            if entry.request != 0 { w.write(string: requests[entry.request - 1]) }
        }
        return w.bytes
    }

    /// Replaces the state with `encode`'s bytes (the window and late TTL are
    /// this joiner's own; the counters restart at 0).
    /// - Throws: `CodecError` for truncated bytes, invalid UTF-8, an unknown
    ///   format or a repeated (user, item); the joiner is then empty.
    package func restore(_ bytes: [UInt8]) throws(CodecError) {
        clear()
        do {
            try restoreEntries(bytes)
        } catch {
            clear()
            throw error
        }
    }

    private func restoreEntries(_ bytes: [UInt8]) throws(CodecError) {
        var r = ByteReader(bytes)
        let format = try r.readByte("join state format")
        guard format == Self.checkpointFormat else {
            throw CodecError(.unknownVersion, "join state: format \(format)")
        }
        watermark = try r.readZigzag("join state watermark")
        seq = UInt32(truncatingIfNeeded: try r.readVarint("join state seq"))
        let count = try r.readVarint("join state count")
        for _ in 0..<count {
            let userId = try r.readString("join state user")
            let itemId = try r.readString("join state item")
            let ts = try r.readZigzag("join state impression ts")
            let stored = try r.readByte("join state flags")
            var entry = JoinEntry(impressionTs: ts, interactionCount: 0, popularity7d: 0, impressions7d: 0,
                                  seq: UInt32(truncatingIfNeeded: try r.readVarint("join state entry seq")),
                                  request: 0, position: 0, flags: stored & ~Self.hasRequest)
            if entry.has(JoinEntry.hasPosition) {
                entry.position = Int32(truncatingIfNeeded: try r.readZigzag("join state position"))
            }
            if entry.has(JoinEntry.hasFeatures) {
                entry.interactionCount = try r.readZigzag("join state interaction_count")
                entry.popularity7d = try r.readZigzag("join state popularity_7d")
                entry.impressions7d = try r.readZigzag("join state impressions_7d")
            }
            let requestId = stored & Self.hasRequest != 0 ? try r.readString("join state request") : nil
            let key = Self.key(users.retain(userId), items.retain(itemId))
            guard entries[key] == nil else {
                throw CodecError(.invalidValue, "join state: (\(userId), \(itemId)) twice")
            }
            if let requestId { entry.request = requests.retain(requestId) + 1 }
            entries[key] = entry
            let close = ts &+ windowMs
            if entry.has(JoinEntry.closed) {
                expiryHeap.insert(.init(deadline: close &+ lateTTLMs, key: key, seq: entry.seq))
            } else {
                pendingCount += 1
                closeHeap.insert(.init(deadline: close, key: key, seq: entry.seq))
            }
        }
        peakStateCount = entries.count
        guard r.isAtEnd else { throw CodecError(.trailingBytes, "join state: \(r.remaining) bytes after the entries") }
    }

    /// Forgets everything (ids, entries, deadlines, watermark).
    private func clear() {
        entries.forEach { key, entry in releaseIds(key, entry) }
        entries = JoinEntryTable()
        closeHeap = Heap()
        expiryHeap = Heap()
        seq = 0
        watermark = Int64.min
        pendingCount = 0
    }
}
