import CPrefetch

/// A string -> dense slot (UInt32) hash index whose keys live with the caller.
///
/// Buckets hold only (32-bit hash tag, slot): 8 bytes, so the table stays small
/// enough to be mostly cache-resident, and the key comparison reads the caller's
/// per-slot state, which the caller is about to touch anyway. That makes a lookup
/// of a cold key about one cache miss instead of two or three (Swift's
/// `Dictionary<String, UInt32>` keeps keys and values in separate arrays).
/// Open addressing with linear probing; a key is removed by backward-shift
/// deletion (`remove`), so probe runs never hold tombstones.
public struct KeyIndex: Sendable {
    @usableFromInline
    struct Bucket: Sendable {
        @usableFromInline var tag: UInt32
        /// `UInt32.max` marks an empty bucket.
        @usableFromInline var slot: UInt32

        @inlinable init(tag: UInt32, slot: UInt32) {
            self.tag = tag
            self.slot = slot
        }
    }

    @usableFromInline var buckets: [Bucket]
    @usableFromInline var mask: Int
    public var count: Int { _count }
    @usableFromInline var _count = 0
    /// `hashSeed`, copied: a `static let` with a computed value is read
    /// through its lazy-initialisation accessor (a call and a once-check per
    /// tag, ~16 instructions, 1.2% of `freshet bench core --phase pipeline`);
    /// a hot lookup reads this copy instead (`tag(bytes:)` on the index).
    @usableFromInline let seed = KeyIndex.hashSeed

    public init(minimumCapacity: Int = 16) {
        var n = 16
        while n * 3 < minimumCapacity * 4 { n <<= 1 }
        buckets = Array(repeating: Bucket(tag: 0, slot: .max), count: n)
        mask = n - 1
    }

    /// The hash tag of a key: a seeded hash of its UTF-8 bytes, truncated.
    /// Ids are byte strings and callers' `isKey` compares bytes
    /// (`IdBytes.equal`), so hashing the bytes (not the canonical form, as
    /// `String`'s own hash does) is exactly consistent, and the same tag
    /// comes from a `String` and from raw bytes of a record (`tag(bytes:)`).
    @inlinable
    public static func tag(_ key: String) -> UInt32 {
        if let t = key.utf8.withContiguousStorageIfAvailable({ tag(bytes: UnsafeRawBufferPointer($0)) }) { return t }
        return Array(key.utf8).withUnsafeBytes { tag(bytes: $0) }
    }

    /// The hash tag of an id given as its UTF-8 bytes (see `tag(_:)`).
    ///
    /// A multiply-fold hash in the manner of wyhash (64×64→128-bit products
    /// folded to 64 bits), keyed by a per-process random seed like Swift's
    /// `Hasher`, so crafted ids cannot be chosen offline to collide. It
    /// replaced `Hasher` (SipHash-1-3), whose set-up and finalisation cost
    /// more than the lookup itself for ids of a few bytes; tags never leave
    /// the process (no checkpoint or wire format holds one).
    @inlinable @inline(__always)
    public static func tag(bytes: UnsafeRawBufferPointer) -> UInt32 {
        tag(bytes: bytes, seed: hashSeed)
    }

    /// `KeyIndex.tag(bytes:)` with the seed this index copied (the same
    /// value in every index of the process, so the same tag).
    @inlinable @inline(__always)
    public func tag(bytes: UnsafeRawBufferPointer) -> UInt32 {
        Self.tag(bytes: bytes, seed: seed)
    }

    @inlinable @inline(__always)
    static func tag(bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt32 {
        let n = bytes.count
        var a: UInt64 = 0, b: UInt64 = 0
        if n <= 16 {
            if n >= 8 {
                a = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
                b = bytes.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
            } else if n >= 4 {
                a = UInt64(bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) << 32
                    | UInt64(bytes.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self))
            } else if n > 0 {
                a = UInt64(bytes[0]) << 16 | UInt64(bytes[n >> 1]) << 8 | UInt64(bytes[n &- 1])
            }
        } else {
            var state = seed
            var i = 0
            while i &+ 16 < n {
                state = mix(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ hashSecret1,
                            bytes.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self) ^ state)
                i &+= 16
            }
            a = bytes.loadUnaligned(fromByteOffset: n &- 16, as: UInt64.self) ^ state
            b = bytes.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
        }
        let h = mix(mix(a ^ hashSecret1, b ^ seed) ^ UInt64(truncatingIfNeeded: n), hashSecret2)
        return UInt32(truncatingIfNeeded: h)
    }

    /// The 128-bit product of `x` and `y`, high half xor low half.
    @inlinable
    static func mix(_ x: UInt64, _ y: UInt64) -> UInt64 {
        let (high, low) = x.multipliedFullWidth(by: y)
        return high ^ low
    }

    @usableFromInline static let hashSeed = UInt64.random(in: 1...UInt64.max)
    @usableFromInline static let hashSecret1: UInt64 = 0xa076_1d64_78bd_642f
    @usableFromInline static let hashSecret2: UInt64 = 0xe703_7ed1_a0b4_28db

    /// Prepares a batch of lookups of keys known in advance (a positive's
    /// history, a restored entry's items): writes each id's tag into
    /// `tags`, asks the cache for the bucket each lookup reads first, then
    /// for the key each bucket names (`keyAddress(slot)`: where the caller
    /// keeps that slot's key, nil for none), keys not compared. The misses
    /// of the batch then overlap instead of coming one after another. A
    /// hint only: nothing is looked up or changed.
    @inlinable
    public func prefetch(_ ids: UnsafeBufferPointer<UnsafeRawBufferPointer>, tags: UnsafeMutableBufferPointer<UInt32>,
                         keyAddress: (UInt32) -> UnsafeRawPointer?) {
        precondition(tags.count >= ids.count, "one tag per id")
        buckets.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return }
            for k in ids.indices {
                let tag = self.tag(bytes: ids[k])
                tags[k] = tag
                freshet_prefetch(UnsafeRawPointer(base + (Int(tag) & mask)))
            }
        }
        // The lookup's own probe, every key taken as a match: the first slot carrying the tag.
        for k in ids.indices {
            if let candidate = candidateSlot(tag: tags[k]), let key = keyAddress(candidate) { freshet_prefetch(key) }
        }
    }

    /// Asks the cache for the bucket a lookup of `tag` reads first (a hint:
    /// nothing is looked up or changed).
    /// The hint is given after `withUnsafeBufferPointer` returns, from the
    /// bucket's address alone: called inside it, the C function (opaque to
    /// Swift's reference counting) made the compiler retain and release
    /// the buckets around it, two runtime calls per record shown ahead
    /// (`UserStatePrefetcher`). A prefetch never dereferences its address,
    /// and the buckets stay alive meanwhile (this index holds them).
    @inlinable @inline(__always)
    public func prefetchBucket(tag: UInt32) {
        let bucket: UnsafeRawPointer? = buckets.withUnsafeBufferPointer { b in
            b.baseAddress.map { UnsafeRawPointer($0 + (Int(tag) & mask)) }
        }
        if let bucket { freshet_prefetch(bucket) }
    }

    /// The slot of the first bucket carrying `tag` (the lookup's probe with
    /// every key taken as a match), or nil: for prefetching the state of a
    /// key whose lookup comes later. Usually the key's own slot; another
    /// key's when their tags collide.
    @inlinable @inline(__always)
    public func candidateSlot(tag: UInt32) -> UInt32? {
        slot(tag: tag, isKey: { _ in true })
    }

    /// The slot whose key satisfies `isKey`, or nil. `isKey(slot)` compares the
    /// caller's stored key for `slot` with the key looked up.
    /// Always inlined, so that `isKey` (a closure over the caller's keys)
    /// is inlined too instead of being called through a context per probe.
    @inlinable @inline(__always)
    public func slot(tag: UInt32, isKey: (UInt32) -> Bool) -> UInt32? {
        var i = Int(tag) & mask
        while true {
            let b = buckets[i]
            if b.slot == .max { return nil }
            if b.tag == tag && isKey(b.slot) { return b.slot }
            i = (i &+ 1) & mask
        }
    }

    /// The existing slot, or `newSlot()` recorded for this key.
    @inlinable @inline(__always)
    public mutating func slot(tag: UInt32, isKey: (UInt32) -> Bool, orInsert newSlot: () -> UInt32) -> UInt32 {
        var i = Int(tag) & mask
        while true {
            let b = buckets[i]
            if b.slot == .max { break }
            if b.tag == tag && isKey(b.slot) { return b.slot }
            i = (i &+ 1) & mask
        }
        return insert(tag: tag, slot: newSlot(), at: i)
    }

    /// Records a new key's slot in the empty bucket `i` (the cold part of a lookup).
    @usableFromInline @inline(never)
    mutating func insert(tag: UInt32, slot s: UInt32, at i: Int) -> UInt32 {
        precondition(s != .max, "slot space exhausted")
        buckets[i] = Bucket(tag: tag, slot: s)
        _count += 1
        // Keep the load factor at or below 3/4 so probe runs stay short.
        if _count * 4 > buckets.count * 3 { grow() }
        return s
    }

    /// Removes the bucket that records `slot` (its key's `tag` finds it);
    /// false when none does. Backward-shift deletion (Knuth, TAOCP vol. 3,
    /// 6.4, Algorithm R): each later bucket of the probe run whose home is not
    /// between the hole and itself moves back into the hole, so every key
    /// stays reachable from its home without tombstones.
    @discardableResult
    public mutating func remove(tag: UInt32, slot: UInt32) -> Bool {
        var hole = Int(tag) & mask
        while true {
            let b = buckets[hole]
            if b.slot == .max { return false }
            if b.slot == slot { break }
            hole = (hole &+ 1) & mask
        }
        var j = hole
        while true {
            j = (j &+ 1) & mask
            let b = buckets[j]
            if b.slot == .max { break }
            let home = Int(b.tag) & mask
            // The bucket stays when its home lies cyclically in (hole, j].
            let stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if !stays {
                buckets[hole] = b
                hole = j
            }
        }
        buckets[hole] = Bucket(tag: 0, slot: .max)
        _count -= 1
        return true
    }

    /// Bytes of the bucket array.
    public var bucketBytes: Int { buckets.count * MemoryLayout<Bucket>.stride }

    public mutating func removeAll() {
        self = KeyIndex()
    }

    @usableFromInline
    mutating func grow() {
        let old = buckets
        let n = old.count * 2
        buckets = Array(repeating: Bucket(tag: 0, slot: .max), count: n)
        mask = n - 1
        // Tags are full 32-bit hashes, so no key is re-hashed.
        for b in old where b.slot != .max {
            var i = Int(b.tag) & mask
            while buckets[i].slot != .max { i = (i &+ 1) & mask }
            buckets[i] = b
        }
    }
}
