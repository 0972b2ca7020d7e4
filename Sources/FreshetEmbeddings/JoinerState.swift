import FreshetCore
import HeapModule

/// Ids interned to dense `UInt32` slots with a reference count: a slot is
/// recycled once nothing refers to it, so the table holds only the ids of live
/// join entries (the joiner forgets users and items whose impressions expired).
/// Ids are equal when their UTF-8 bytes are (`ExactId`).
struct CountedInterner {
    private var slotOf: [ExactId: UInt32] = [:]
    private(set) var names: [String] = []
    private var refs: [UInt32] = []
    private var free: [UInt32] = []

    /// Ids currently referenced.
    var liveCount: Int { slotOf.count }

    /// The slot of `id`, taking one reference.
    mutating func retain(_ id: String) -> UInt32 {
        let key = ExactId(id)
        if let slot = slotOf[key] {
            refs[Int(slot)] &+= 1
            return slot
        }
        let slot: UInt32
        if let reused = free.popLast() {
            slot = reused
            names[Int(slot)] = id
            refs[Int(slot)] = 1
        } else {
            slot = UInt32(names.count)
            names.append(id)
            refs.append(1)
        }
        slotOf[key] = slot
        return slot
    }

    /// The slot of `id` if it is live (no reference taken).
    func slot(of id: String) -> UInt32? { slotOf[ExactId(id)] }

    /// Drops one reference; the slot is freed at zero.
    mutating func release(_ slot: UInt32) {
        let i = Int(slot)
        refs[i] -= 1
        guard refs[i] == 0 else { return }
        slotOf.removeValue(forKey: ExactId(names[i]))
        names[i] = ""
        free.append(slot)
    }

    subscript(_ slot: UInt32) -> String { names[Int(slot)] }

    /// Approximate bytes: the map (~1.5x its entries for load factor), names,
    /// counts; id bytes beyond 15 (Swift's inline small strings) counted too.
    var approximateBytes: Int {
        var bytes = slotOf.capacity * (16 + 4) * 3 / 2 + names.capacity * 16 + refs.capacity * 4 + free.capacity * 4
        for name in names where name.utf8.count > 15 { bytes += 32 + name.utf8.count }
        return bytes
    }
}

/// One (user, item) of the joiner: an open impression (pending), or the
/// tombstone of a closed one kept for late positives. 48 bytes: the ids and the
/// request id are interned slots, the optionals are flag bits.
struct JoinEntry {
    var impressionTs: Int64
    var interactionCount: Int64
    var popularity7d: Int64
    var impressions7d: Int64
    /// Matches heap nodes to the entry they were pushed for (wraps after 2^32
    /// impressions of one key, far beyond a deadline's life).
    var seq: UInt32
    /// Interned request id + 1; 0 = none.
    var request: UInt32
    var position: Int32
    var flags: UInt8

    static let hasPosition: UInt8 = 1
    static let hasFeatures: UInt8 = 2
    static let engaged: UInt8 = 4
    static let closed: UInt8 = 8

    func has(_ flag: UInt8) -> Bool { flags & flag != 0 }

    var features: ServingFeatures? {
        has(Self.hasFeatures)
            ? ServingFeatures(interactionCount: interactionCount, popularity7d: popularity7d, impressions7d: impressions7d)
            : nil
    }

    var positionValue: Int? { has(Self.hasPosition) ? Int(position) : nil }
}

/// A deadline of the joiner: the window close or the tombstone expiry of the
/// entry `key` as pushed with `seq` (24 bytes). Ordered by deadline; a node
/// whose entry was replaced since (other `seq`) is skipped when popped.
struct JoinDeadline: Comparable {
    var deadline: Int64
    var key: UInt64
    var seq: UInt32

    static func < (a: JoinDeadline, b: JoinDeadline) -> Bool { a.deadline < b.deadline }
    static func == (a: JoinDeadline, b: JoinDeadline) -> Bool { a.deadline == b.deadline }
}
