/// A string -> dense slot (UInt32) hash index for keyed state.
///
/// Open addressing with linear probing over one array of (key, slot) buckets, so a
/// lookup touches one cache line in the common case (Swift's `Dictionary` keeps
/// keys and values in separate arrays: two misses for a cold key). Keys are never
/// removed individually; slots are assigned by the caller (typically 0, 1, 2, ...).
public struct KeyIndex: Sendable {
    struct Bucket: Sendable {
        var key: String
        /// `UInt32.max` marks an empty bucket.
        var slot: UInt32
    }

    private var buckets: [Bucket]
    private var mask: Int
    public private(set) var count = 0

    public init(minimumCapacity: Int = 16) {
        var n = 16
        while n * 3 < minimumCapacity * 4 { n <<= 1 }
        buckets = Array(repeating: Bucket(key: "", slot: .max), count: n)
        mask = n - 1
    }

    /// The slot of `key`, or nil.
    @inline(__always)
    public func slot(of key: String) -> UInt32? {
        var i = key.hashValue & mask
        while true {
            let b = buckets[i]
            if b.slot == .max { return nil }
            if b.key == key { return b.slot }
            i = (i &+ 1) & mask
        }
    }

    /// Returns the existing slot of `key`, or stores `newSlot()` for it.
    @inline(__always)
    public mutating func slot(of key: String, orInsert newSlot: () -> UInt32) -> UInt32 {
        let h = key.hashValue
        var i = h & mask
        while true {
            let s = buckets[i].slot
            if s == .max { break }
            if buckets[i].key == key { return s }
            i = (i &+ 1) & mask
        }
        let s = newSlot()
        precondition(s != .max, "slot space exhausted")
        buckets[i] = Bucket(key: key, slot: s)
        count += 1
        // Keep the load factor at or below 3/4 so probe runs stay short.
        if count * 4 > buckets.count * 3 { grow() }
        return s
    }

    public mutating func removeAll() {
        self = KeyIndex()
    }

    private mutating func grow() {
        let old = buckets
        let n = old.count * 2
        buckets = Array(repeating: Bucket(key: "", slot: .max), count: n)
        mask = n - 1
        for b in old where b.slot != .max {
            var i = b.key.hashValue & mask
            while buckets[i].slot != .max { i = (i &+ 1) & mask }
            buckets[i] = b
        }
    }
}
