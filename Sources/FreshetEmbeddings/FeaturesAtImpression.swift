import FreshetCore

/// The item features of impressions, recorded when the item task applies the
/// impression itself (its direct event) and taken by the join when the counts
/// stage's copy of the same impression arrives, up to the hold of that stage
/// later (docs/EMBEDDINGS.md, "Examples").
///
/// Why: the join copy reaches the item task only once the counts stage's
/// watermark passed the impression; reading the item's features then would
/// count what happened meanwhile, e.g. the impressed user's own click (the
/// example's label leaking into its features).
///
/// Keyed by the impression's identity as both copies carry it: (user, item,
/// event time). Identical keys (the same item shown twice to one user at one
/// instant) share the first recording, as the joiner folds such a repeat
/// into the first impression. State is bounded: an entry leaves when its copy
/// takes it; an entry whose copy never comes (the copy arrived first, or an
/// impression more than `graceMs` behind the join's watermark) is dropped once
/// the join's watermark is `graceMs` past the time the impression is known
/// from (its own time when on time: a late impression's copy is released by
/// that time, so an entry expiring by its event time was gone before a copy
/// hours late could take it, and the copy fell back to counts read later, a
/// breaker's finding). Checkpointed whole with
/// the item task (`encode`/`restore`), so a replay after a crash records or
/// finds the same values. Owned by the item task's processing thread.
package final class FeaturesAtImpression {
    /// Ids compare and hash by their UTF-8 bytes (`IdBytes`), as every map of
    /// ids does: `String`'s own `==` would take two canonically equivalent
    /// but different ids ("caf\u{E9}", "cafe\u{301}") for one user.
    package struct Key: Hashable, Sendable {
        package let userId: String
        package let itemId: String
        package let ts: EventTimeMs
        /// The key's bucket tag in the index, made once with the key: a key
        /// is looked up, stored and expired by it, and hashing two `String`s
        /// cost ~200 instructions each time.
        let tag: UInt32

        package init(userId: String, itemId: String, ts: EventTimeMs) {
            self.init(userId: userId, itemId: itemId, ts: ts,
                      userTag: KeyIndex.tag(userId), itemTag: KeyIndex.tag(itemId))
        }

        /// A key whose ids' tags the caller made from their bytes
        /// (`KeyIndex.tag(bytes:)`, the same value as `KeyIndex.tag` of the
        /// ids): the item task reads ids as bytes of a record, and tags an
        /// impression's user once for all its items.
        package init(userId: String, itemId: String, ts: EventTimeMs, userTag: UInt32, itemTag: UInt32) {
            self.userId = userId
            self.itemId = itemId
            self.ts = ts
            var h = UInt64(userTag) << 32 | UInt64(itemTag)
            h ^= UInt64(bitPattern: ts) &* 0x9E37_79B9_7F4A_7C15
            // Every input bit reaches the low 32 the tag keeps.
            tag = UInt32(truncatingIfNeeded: fmix64(h))
        }

        /// A freed slot's key (no ids to keep alive).
        package static let vacant = Key(userId: "", itemId: "", ts: 0)

        package static func == (a: Key, b: Key) -> Bool {
            a.ts == b.ts && a.tag == b.tag && IdBytes.equal(a.userId, b.userId) && IdBytes.equal(a.itemId, b.itemId)
        }

        package func hash(into hasher: inout Hasher) {
            IdBytes.hash(userId, into: &hasher)
            IdBytes.hash(itemId, into: &hasher)
            hasher.combine(ts)
        }
    }

    /// An item's window counts as of the impression.
    package struct Recorded: Sendable, Equatable {
        package var popularity7d: Int64
        package var impressions7d: Int64
        package init(popularity7d: Int64, impressions7d: Int64) {
            self.popularity7d = popularity7d
            self.impressions7d = impressions7d
        }
    }

    private struct Entry {
        var recorded: Recorded
        /// When the impression is known from (its expiry counts from it).
        var knownFrom: EventTimeMs
        /// Impressions with this key whose copy has not come yet.
        var pending: Int32
        /// Matches the entry's expiry node (stale nodes are skipped).
        var seq: UInt64
        /// `expiries` when recorded: only a later `expire` can expire it.
        var generation: UInt64
    }

    /// An entry's expiry, in the order entries were recorded. A slot freed
    /// and reused by another key since is told apart by `seq`.
    private struct Deadline {
        var ts: EventTimeMs
        var seq: UInt64
        var slot: UInt32
    }

    /// Event time (ms) past an entry's time after which the join's watermark drops it.
    package let graceMs: Int64
    // Owned by one item task's processing thread, never touched concurrently
    // or reentrantly: no dynamic exclusivity checks (swift_beginAccess and its
    // access set were ~6% of the default topology's item stage, `bench tasks`).
    /// The entries by key: a `KeyIndex` (8-byte buckets, a multiply-fold
    /// hash of the ids' bytes) over slots of `keys` and `slots`, freed slots
    /// reused. A `Dictionary<Key, Entry>` hashed both ids with SipHash on
    /// every recording and every copy, ~25% of the default topology's item
    /// stage with its finds and removals (`freshet bench tasks --only 2`).
    @exclusivity(unchecked) private var index = KeyIndex()
    @exclusivity(unchecked) private var keys: [Key] = []
    /// Per slot; a free slot's `pending` is 0 (a live entry's is at least 1).
    @exclusivity(unchecked) private var slots: [Entry] = []
    @exclusivity(unchecked) private var free: [UInt32] = []
    /// Expiries in recording order (a queue from `head`): most entries are
    /// taken by their copy long before they expire, so a heap would mostly
    /// hold dead nodes, paying log n per recording to order them (5% of the
    /// default topology's item stage, `freshet bench tasks`). Recording order
    /// is nearly time order; an entry recorded behind a newer one may leave
    /// memory late, but never counts late: `take` and `encode` treat an entry
    /// as gone once an `expire` after its recording passed its time, which
    /// is exactly when a heap of deadlines dropped it.
    @exclusivity(unchecked) private var deadlines: [Deadline] = []
    @exclusivity(unchecked) private var head = 0
    /// The latest expiry limit (join watermark − grace): entries at or
    /// before it are expired, whether or not they have left memory yet.
    @exclusivity(unchecked) private var expiredThrough: EventTimeMs?
    /// `expire` calls that moved the limit.
    @exclusivity(unchecked) private var expiries: UInt64 = 0
    @exclusivity(unchecked) private var seq: UInt64 = 0
    /// Copies that found no recorded features (the caller falls back to the current ones).
    @exclusivity(unchecked) package private(set) var misses = 0
    /// Entries dropped by event time, their copy never taken.
    @exclusivity(unchecked) package private(set) var expired = 0
    @exclusivity(unchecked) package private(set) var peakCount = 0

    /// - Parameter graceMs: the join window plus the joiner's late TTL is a
    ///   good choice: a later copy would find its impression closed anyway.
    package init(graceMs: Int64) {
        precondition(graceMs >= 0)
        self.graceMs = graceMs
    }

    /// Impressions whose copy has not come yet (distinct keys; expired ones
    /// recorded out of time order may still be counted until they leave).
    package var count: Int { index.count }

    /// The slot holding `key`, nil when none.
    @inline(__always)
    private func find(_ key: Key, tag: UInt32) -> UInt32? {
        index.slot(tag: tag, isKey: { keys[Int($0)] == key })
    }

    /// Frees `slot` (its key's bucket goes, its ids are released).
    private func remove(_ slot: UInt32, tag: UInt32) {
        _ = index.remove(tag: tag, slot: slot)
        keys[Int(slot)] = .vacant
        slots[Int(slot)].pending = 0
        free.append(slot)
    }

    /// Whether an entry has expired: an `expire` after its recording had a
    /// limit at or past its known-from time (limits only grow, so the latest decides).
    @inline(__always)
    private func isExpired(_ entry: Entry) -> Bool {
        entry.generation < expiries && expiredThrough.map { entry.knownFrom <= $0 } ?? false
    }

    /// Records the features of one impressed item. `knownFrom`: when the
    /// impression is known from (nil: its own time), which its expiry counts from.
    package func record(_ key: Key, _ recorded: Recorded, knownFrom: EventTimeMs? = nil) {
        let tag = key.tag
        let known = max(knownFrom ?? key.ts, key.ts)
        if let slot = find(key, tag: tag) {
            if !isExpired(slots[Int(slot)]) {
                slots[Int(slot)].pending += 1
                return
            }
            // An expired entry still in memory: it is gone, this recording starts anew.
            expired += 1
            remove(slot, tag: tag)
        }
        seq &+= 1
        let entry = Entry(recorded: recorded, knownFrom: known, pending: 1, seq: seq, generation: expiries)
        let slot: UInt32
        if let reused = free.popLast() {
            slot = reused
            keys[Int(slot)] = key
            slots[Int(slot)] = entry
        } else {
            slot = UInt32(truncatingIfNeeded: keys.count)
            keys.append(key)
            slots.append(entry)
        }
        _ = index.slot(tag: tag, isKey: { _ in false }, orInsert: { slot })
        deadlines.append(Deadline(ts: known, seq: seq, slot: slot))
        peakCount = max(peakCount, index.count)
    }

    /// The features recorded for the impression the copy stands for (nil when
    /// none: counted in `misses`); the entry leaves with its last copy.
    package func take(_ key: Key) -> Recorded? {
        let tag = key.tag
        guard let slot = find(key, tag: tag) else {
            misses += 1
            return nil
        }
        let entry = slots[Int(slot)]
        guard !isExpired(entry) else {
            remove(slot, tag: tag)
            expired += 1
            misses += 1
            return nil
        }
        if entry.pending <= 1 { remove(slot, tag: tag) } else { slots[Int(slot)].pending -= 1 }
        return entry.recorded
    }

    /// Expires entries whose known-from time is at least `graceMs` behind the join's
    /// watermark: they are gone for `take` and `encode` at once, and leave
    /// memory as the recording-order queue reaches them.
    package func expire(joinWatermark: EventTimeMs) {
        let (limit, overflow) = joinWatermark.subtractingReportingOverflow(graceMs)
        guard !overflow, expiredThrough.map({ limit > $0 }) ?? true else { return }
        expiredThrough = limit
        expiries += 1
        while head < deadlines.count, deadlines[head].ts <= limit {
            let node = deadlines[head]
            head += 1
            let i = Int(node.slot)
            // Taken since (and maybe reused by another recording): not this node's entry.
            guard slots[i].pending > 0, slots[i].seq == node.seq else { continue }
            remove(node.slot, tag: keys[i].tag)
            expired += 1
        }
        // Compact the consumed front now and then (amortised O(1) a node).
        if head >= 4_096 && head * 2 >= deadlines.count {
            deadlines.removeFirst(head)
            head = 0
        }
    }

    private static let format: UInt8 = 2

    /// Checkpoint form: version, count, then per entry user, item, time,
    /// popularity, impressions, pending, known-from − time (ids
    /// length-prefixed, numbers zigzag varints), in time order so the bytes
    /// do not depend on hashing. Version 1 had no known-from (read as the time).
    package func encode() -> [UInt8] {
        let sorted = zip(keys, slots).filter { $0.1.pending > 0 && !isExpired($0.1) }
            .sorted { ($0.0.ts, $0.1.seq) < ($1.0.ts, $1.1.seq) }
        var w = ByteWriter(capacity: 8 + sorted.count * 32)
        w.write(byte: Self.format)
        w.write(varint: UInt64(sorted.count))
        for (key, entry) in sorted {
            w.write(string: key.userId)
            w.write(string: key.itemId)
            w.write(zigzag: key.ts)
            w.write(zigzag: entry.recorded.popularity7d)
            w.write(zigzag: entry.recorded.impressions7d)
            w.write(varint: UInt64(max(0, entry.pending)))
            w.write(zigzag: entry.knownFrom &- key.ts)
        }
        return w.bytes
    }

    /// Replaces the state with a checkpoint's (`encode`'s form).
    /// - Throws: `CodecError` for truncated bytes or an unknown version.
    package func restore(_ bytes: [UInt8]) throws(CodecError) {
        index.removeAll()
        keys.removeAll()
        slots.removeAll()
        free.removeAll()
        deadlines.removeAll()
        head = 0
        expiredThrough = nil
        expiries = 0
        var r = ByteReader(bytes)
        let version = try r.readByte("features at impression version")
        guard version == 1 || version == Self.format else {
            throw CodecError(.unknownVersion, "features at impression: format \(version)")
        }
        let n = try r.readVarint("features at impression count")
        for _ in 0..<n {
            let key = Key(userId: try r.readString("user"), itemId: try r.readString("item"), ts: try r.readZigzag("ts"))
            let recorded = Recorded(popularity7d: try r.readZigzag("popularity_7d"), impressions7d: try r.readZigzag("impressions_7d"))
            let pending = try r.readVarint("pending")
            let knownFrom = version == 1 ? key.ts : key.ts &+ (try r.readZigzag("known after ts"))
            record(key, recorded, knownFrom: knownFrom)
            if pending > 1, let slot = find(key, tag: key.tag) {
                slots[Int(slot)].pending = Int32(clamping: pending)
            }
        }
    }
}
/// MurmurHash3's 64-bit finaliser (`fmix64`): every input bit affects every
/// output bit. For hash tables of keys outsiders do not choose.
@inline(__always)
func fmix64(_ key: UInt64) -> UInt64 {
    var h = key
    h ^= h >> 33
    h &*= 0xff51_afd7_ed55_8ccd
    h ^= h >> 33
    h &*= 0xc4ce_b9fe_1a85_ec53
    h ^= h >> 33
    return h
}
