import FreshetCore

/// Ids interned to dense `UInt32` slots with a reference count: a slot is
/// recycled once nothing refers to it, so the table holds only the ids of live
/// impressions (the joiner forgets users whose impressions expired).
/// Ids are equal when their UTF-8 bytes are. Indexed by a `KeyIndex` (8-byte
/// buckets, a multiply-fold hash of the bytes, backward-shift removal): a
/// `Dictionary<ExactId, UInt32>` cost a SipHash set-up and finalisation per
/// retain and release, 10% of the default topology's task CPU
/// (`freshet bench tasks`). A class, so a lookup's key comparison can read
/// `names` while the index is being changed.
final class CountedInterner {
    // Owned by one item task's processing thread, never touched concurrently
    // or reentrantly: no dynamic exclusivity checks (swift_beginAccess and its
    // access set were ~6% of the default topology's item stage, `bench tasks`).
    @exclusivity(unchecked) private var index = KeyIndex()
    @exclusivity(unchecked) private(set) var names: [String] = []
    @exclusivity(unchecked) private var refs: [UInt32] = []
    @exclusivity(unchecked) private var free: [UInt32] = []

    /// Ids currently referenced.
    var liveCount: Int { index.count }

    /// The slot of `id`, taking one reference.
    func retain(_ id: String) -> UInt32 {
        let tag = KeyIndex.tag(id)
        let next = free.last ?? UInt32(truncatingIfNeeded: names.count)
        let slot = index.slot(tag: tag, isKey: { IdBytes.equal(names[Int($0)], id) }, orInsert: { next })
        guard slot == next else {
            refs[Int(slot)] &+= 1
            return slot
        }
        // A new id (a free slot is never a live id's, so `next` was inserted).
        if Int(slot) < names.count {
            free.removeLast()
            names[Int(slot)] = id
            refs[Int(slot)] = 1
        } else {
            names.append(id)
            refs.append(1)
        }
        return slot
    }

    /// The slot of `id` if it is live (no reference taken).
    func slot(of id: String) -> UInt32? {
        index.slot(tag: KeyIndex.tag(id), isKey: { IdBytes.equal(names[Int($0)], id) })
    }

    /// Drops one reference; the slot is freed at zero.
    func release(_ slot: UInt32) {
        let i = Int(slot)
        refs[i] -= 1
        guard refs[i] == 0 else { return }
        // The bucket is found by the id's tag (hashed again: once per freed slot).
        index.remove(tag: KeyIndex.tag(names[i]), slot: slot)
        names[i] = ""
        free.append(slot)
    }

    subscript(_ slot: UInt32) -> String { names[Int(slot)] }
}
