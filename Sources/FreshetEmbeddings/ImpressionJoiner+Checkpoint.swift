import FreshetCore
import HeapModule

/// The joiner's state as bytes, so the joining task's (a counts task; an item
/// task when the input is not keyed by user) open join windows and
/// tombstones survive a crash or a move to another instance (the meta field
/// `join_state`, written whole at every checkpoint).
///
/// Without it, a restored joining task forgot every impression whose window was
/// open at its checkpoint: their no-engagement negatives were never emitted
/// and their positives came out without the impression's context.
///
/// Layout (FreshetCore's varints): format byte 2; the watermark (zigzag); the
/// sequence counter (varint); the impression count (varint); then per
/// impression, in the order they were recorded (`seq`): user id
/// (length-prefixed UTF-8), time (zigzag), seq (varint), a flags byte (1:
/// closed, 2: a request id follows), the request id, the item count
/// (varint), and per item its id, a flags byte (`ImpressionGroup.Item`'s
/// bits), the position (zigzag, when flagged) and the three serving features
/// (zigzag, when flagged); an item superseded by a newer impression of the
/// pair (flag 8) only waits to close. Deadlines are not stored: a pending impression
/// closes at its time + window, a tombstone expires `lateTTL` after that, so
/// `restore` rebuilds both heaps.
extension ImpressionJoiner {
    static let checkpointFormat: UInt8 = 2
    private static let closedFlag: UInt8 = 1
    private static let requestFlag: UInt8 = 2

    /// The whole state, in `restore`'s form.
    package func encode() -> [UInt8] {
        // Recording order: a restored joiner then chains each user's
        // impressions newest first, as this one does.
        let live = groups.indices.filter { !groups[$0].items.isEmpty }.sorted { groups[$0].seq < groups[$1].seq }
        var w = ByteWriter(capacity: 16 + stateCount * 40)
        w.write(byte: Self.checkpointFormat)
        w.write(zigzag: watermark)
        w.write(varint: UInt64(seq))
        w.write(varint: UInt64(live.count))
        for g in live {
            let group = groups[g]
            w.write(string: users[group.user])
            w.write(zigzag: group.ts)
            w.write(varint: UInt64(group.seq))
            w.write(byte: (group.closed ? Self.closedFlag : 0) | (group.requestId != nil ? Self.requestFlag : 0))
            if let request = group.requestId { w.write(string: request) }
            w.write(varint: UInt64(group.items.count))
            for item in group.items {
                w.write(string: item.itemId)
                w.write(byte: item.flags)
                if item.has(ImpressionGroup.Item.hasPosition) { w.write(zigzag: Int64(item.position)) }
                if item.has(ImpressionGroup.Item.hasFeatures) {
                    w.write(zigzag: item.interactionCount)
                    w.write(zigzag: item.popularity7d)
                    w.write(zigzag: item.impressions7d)
                }
            }
        }
        return w.bytes
    }

    /// Replaces the state with `encode`'s bytes (the window and late TTL are
    /// this joiner's own; the counters restart at 0).
    /// - Throws: `CodecError` for truncated bytes, invalid UTF-8, an unknown
    ///   format, an empty impression or a (user, item) owned twice; the
    ///   joiner is then empty.
    package func restore(_ bytes: [UInt8]) throws(CodecError) {
        clear()
        do {
            try restoreGroups(bytes)
        } catch {
            clear()
            throw error
        }
    }

    private func restoreGroups(_ bytes: [UInt8]) throws(CodecError) {
        var r = ByteReader(bytes)
        let format = try r.readByte("join state format")
        guard format == Self.checkpointFormat else {
            throw CodecError(.unknownVersion, "join state: format \(format)")
        }
        watermark = try r.readZigzag("join state watermark")
        seq = UInt32(truncatingIfNeeded: try r.readVarint("join state seq"))
        let count = try r.readVarint("join state count")
        guard count <= UInt64(bytes.count) else { throw CodecError(.invalidValue, "join state: \(count) impressions") }
        for _ in 0..<count {
            let userId = try r.readString("join state user")
            let ts = try r.readZigzag("join state ts")
            let groupSeq = UInt32(truncatingIfNeeded: try r.readVarint("join state impression seq"))
            let flags = try r.readByte("join state impression flags")
            let requestId = flags & Self.requestFlag != 0 ? try r.readString("join state request") : nil
            let itemCount = try r.readVarint("join state items")
            guard itemCount > 0, itemCount <= UInt64(bytes.count) else {
                throw CodecError(.invalidValue, "join state: an impression of \(itemCount) items")
            }
            var items: [ImpressionGroup.Item] = []
            items.reserveCapacity(Int(itemCount))
            for _ in 0..<itemCount {
                var item = ImpressionGroup.Item(itemId: try r.readString("join state item"),
                                                flags: try r.readByte("join state item flags"))
                if item.has(ImpressionGroup.Item.hasPosition) {
                    item.position = Int32(truncatingIfNeeded: try r.readZigzag("join state position"))
                }
                if item.has(ImpressionGroup.Item.hasFeatures) {
                    item.interactionCount = try r.readZigzag("join state interaction_count")
                    item.popularity7d = try r.readZigzag("join state popularity_7d")
                    item.impressions7d = try r.readZigzag("join state impressions_7d")
                }
                items.append(item)
            }
            // Only a whole impression enters the state (a failed restore then frees everything).
            let user = retainUser(userId)
            var group = ImpressionGroup(user: user, ts: ts, seq: groupSeq, requestId: requestId, next: newestOfUser[Int(user)])
            group.closed = flags & Self.closedFlag != 0
            for item in items {
                let filter = Self.filterBit(item.itemId)
                let owns = !item.has(ImpressionGroup.Item.superseded)
                guard !owns || (owner(user: user, itemId: item.itemId, filter: filter) == nil
                                && !group.items.contains(where: { !$0.has(ImpressionGroup.Item.superseded)
                                                                  && IdBytes.equal($0.itemId, item.itemId) })) else {
                    users.release(user)
                    throw CodecError(.invalidValue, "join state: (\(userId), \(item.itemId)) owned twice")
                }
                group.items.append(item)
                group.filter |= filter
            }
            let g = allocateGroup(group)
            link(g)
            let close = ts &+ windowMs
            if group.closed {
                closedCount += Int(itemCount)
                expiryHeap.insert(GroupDeadline(deadline: close &+ lateTTLMs, group: g, seq: groupSeq))
            } else {
                pendingCount += Int(itemCount)
                closeHeap.insert(GroupDeadline(deadline: close, group: g, seq: groupSeq))
            }
        }
        peakStateCount = stateCount
        guard r.isAtEnd else { throw CodecError(.trailingBytes, "join state: \(r.remaining) bytes after the impressions") }
    }

    /// Forgets everything (users, impressions, deadlines, watermark).
    private func clear() {
        for g in groups.indices where !groups[g].items.isEmpty { freeGroup(Int32(g)) }
        groups.removeAll()
        freeGroups.removeAll()
        newestOfUser.removeAll()
        chainLength.removeAll()
        ownerIndex.removeAll()
        closeHeap = Heap()
        expiryHeap = Heap()
        seq = 0
        watermark = Int64.min
        pendingCount = 0
        closedCount = 0
    }
}
