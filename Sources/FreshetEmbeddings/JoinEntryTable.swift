/// The examples' join's entries by (user slot << 32 | item slot): a hash map
/// whose keys outsiders do not choose (pairs of interned numbers), so it
/// hashes with a fixed mixer (MurmurHash3's 64-bit finaliser) instead of the
/// per-process SipHash a `Dictionary` runs for every lookup. Concrete, not
/// generic: a generic version in FreshetCore ran unspecialised here, through
/// value witnesses, and was slower than the `Dictionary` (`bench tasks`).
///
/// Open addressing with linear probing over a key array (eight keys a cache
/// line; a value is read only for the key that matched), load factor at most
/// 3/4, and backward-shift deletion (Knuth, TAOCP vol. 3, 6.4, Algorithm R),
/// so probe runs never hold tombstones. `UInt64.max` marks an empty bucket
/// and cannot be a key.
struct JoinEntryTable {
    var keys: [UInt64]
    var values: [JoinEntry?]
    var mask: Int
    /// Number of keys held.
    private(set) var count = 0

    static var emptyKey: UInt64 { .max }

    init(minimumCapacity: Int = 16) {
        var n = 16
        while n * 3 < minimumCapacity * 4 { n <<= 1 }
        keys = Array(repeating: Self.emptyKey, count: n)
        values = Array(repeating: nil, count: n)
        mask = n - 1
    }

    /// Keys it holds before it grows.
    var capacity: Int { keys.count * 3 / 4 }

    /// Buckets allocated (for memory estimates: each is a key and an optional value).
    var bucketCount: Int { keys.count }

    /// The key's first bucket: `fmix64` spreads sequential keys over the table.
    static func home(of key: UInt64, mask: Int) -> Int {
        Int(truncatingIfNeeded: fmix64(key)) & mask
    }

    /// The bucket holding `key`, or nil.
    func bucket(of key: UInt64) -> Int? {
        var i = Self.home(of: key, mask: mask)
        while true {
            let k = keys[i]
            if k == key { return i }
            if k == Self.emptyKey { return nil }
            i = (i &+ 1) & mask
        }
    }

    /// The value for `key`; setting nil removes it.
    subscript(key: UInt64) -> JoinEntry? {
        get {
            // Not `bucket(of:).flatMap { values[$0] }`: the closure stayed
            // unspecialised and copied through value witnesses (measured).
            guard let b = bucket(of: key) else { return nil }
            return values[b]
        }
        set {
            if let newValue { update(newValue, forKey: key) } else { removeValue(forKey: key) }
        }
    }

    /// Sets the value for `key`, adding the key if new.
    mutating func update(_ value: JoinEntry, forKey key: UInt64) {
        precondition(key != Self.emptyKey, "JoinEntryTable: UInt64.max cannot be a key")
        var i = Self.home(of: key, mask: mask)
        while true {
            let k = keys[i]
            if k == key {
                values[i] = value
                return
            }
            if k == Self.emptyKey { break }
            i = (i &+ 1) & mask
        }
        keys[i] = key
        values[i] = value
        count += 1
        if count * 4 > keys.count * 3 { grow() }
    }

    /// Removes `key`; returns its value, nil when it was not there.
    @discardableResult
    mutating func removeValue(forKey key: UInt64) -> JoinEntry? {
        guard var hole = bucket(of: key) else { return nil }
        let removed = values[hole]
        count -= 1
        var j = hole
        while true {
            j = (j &+ 1) & mask
            let k = keys[j]
            if k == Self.emptyKey { break }
            // The key at j may move back into the hole unless its home lies
            // cyclically after the hole (then it would become unreachable).
            let home = Self.home(of: k, mask: mask)
            if (j &- home) & mask >= (j &- hole) & mask {
                keys[hole] = k
                values[hole] = values[j]
                hole = j
            }
        }
        keys[hole] = Self.emptyKey
        values[hole] = nil
        return removed
    }

    /// Every (key, entry) held, in bucket order (the checkpoint sorts them).
    func forEach(_ body: (UInt64, JoinEntry) -> Void) {
        for b in keys.indices where keys[b] != Self.emptyKey {
            if let value = values[b] { body(keys[b], value) }
        }
    }

    /// Doubles the table (rare: kept out of line).
    @inline(never)
    mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        let n = keys.count * 2
        keys = Array(repeating: Self.emptyKey, count: n)
        values = Array(repeating: nil, count: n)
        mask = n - 1
        for b in oldKeys.indices where oldKeys[b] != Self.emptyKey {
            var i = Self.home(of: oldKeys[b], mask: mask)
            while keys[i] != Self.emptyKey { i = (i &+ 1) & mask }
            keys[i] = oldKeys[b]
            values[i] = oldValues[b]
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
