import CPrefetch
import FreshetCore

/// A user's recent positive items: unique interned item ids ordered by the time
/// of the user's latest positive interaction with each, newest first; ties in
/// time put the greater item id first (byte-wise order of the UTF-8 bytes).
///
/// Keeping only the top `capacity` entries is exact, not an approximation: an
/// item's latest time only grows, and so do the times of the items that pushed
/// it out. An evicted item ranked below `capacity` others; it can re-enter only
/// with an event that outranks the current last entry, and then that event's
/// time is its true latest time (any older event would rank below all of them).
///
/// Stored as one array of 12-byte entries (the time split into two 32-bit halves
/// so there is no padding): a full 50-entry list is one ~640-byte allocation, and an
/// update touches one allocation instead of two (fewer cache misses).
struct RecentEntry: Equatable {
    var item: UInt32
    private var tsLow: UInt32
    private var tsHigh: Int32

    init(item: UInt32, ts: Int64) {
        self.item = item
        tsLow = UInt32(truncatingIfNeeded: ts)
        tsHigh = Int32(truncatingIfNeeded: ts >> 32)
    }

    var ts: Int64 { Int64(tsHigh) << 32 | Int64(tsLow) }
}

struct RecentItems {
    private(set) var entries: [RecentEntry] = []

    var count: Int { entries.count }
    var items: [UInt32] { entries.map(\.item) }

    /// Folds in a positive interaction; returns true when the list changed.
    /// `idLess(a, b)`: item a's id is below b's (byte-wise), for ties in
    /// time only (a closure, not the interner itself: passing the store's
    /// interner by value retained and released its arrays on every call).
    mutating func record(_ item: UInt32, ts: Int64, capacity: Int, idLess: (UInt32, UInt32) -> Bool) -> Bool {
        let n = entries.count
        // One read-only pass through the entries: the item's entry, if
        // listed, and where its new entry goes: before the first entry it
        // outranks (the list above `existing` is unaffected by removing it,
        // so only that part is searched). j = -1: nothing changes.
        let (existing, j) = entries.withUnsafeBufferPointer { e -> (Int, Int) in
            var existing = -1
            var k = 0
            while k < n {
                if e[k].item == item { existing = k; break }
                k &+= 1
            }
            // Same or older time for an item already listed: its latest time is unchanged.
            if existing >= 0 && ts <= e[existing].ts { return (existing, -1) }
            var j = 0
            let m = existing >= 0 ? existing : n
            while j < m {
                let t = e[j].ts
                if t < ts { break }
                if t == ts && !idLess(item, e[j].item) { break }
                j &+= 1
            }
            return (existing, j)
        }
        if j < 0 { return false }
        let entry = RecentEntry(item: item, ts: ts)
        // The item moves up from `existing` to `j` (j <= existing); in a
        // full list, it enters at `j` and the last entry drops out; else the
        // list grows by one slot at its end. Then one shift of the entries
        // from `j` up to that slot, in place. (Growing with `insert(_:at:)`
        // went through the generic `replaceSubrange`, ~100 instructions a
        // call, on most positives of users with short lists.)
        let from: Int
        if existing >= 0 {
            from = existing
        } else if n >= capacity {
            if j >= capacity { return false } // full and older than all listed
            from = n &- 1
        } else {
            if n == entries.capacity {
                // Grow in steps that end exactly at capacity instead of doubling past it.
                entries.reserveCapacity(min(capacity, max(4, n * 2)))
            }
            entries.append(entry) // the new last slot; the shift below fills it
            from = n
        }
        entries.withUnsafeMutableBufferPointer { e in
            var i = from
            while i > j {
                e[i] = e[i &- 1]
                i &-= 1
            }
            e[j] = entry
        }
        return true
    }

    /// Asks for the cache line holding the first entries, without retaining
    /// the array (`withUnsafeBufferPointer` would, and that write to the
    /// array's header is the very miss to be avoided): reads the array's
    /// storage reference as a raw pointer (an `Array` is one reference on
    /// 64-bit platforms; on any other layout this asks for nothing). A hint
    /// only: the address is never dereferenced.
    @inline(__always)
    mutating func prefetchEntries() {
        guard MemoryLayout<[RecentEntry]>.size == MemoryLayout<UnsafeRawPointer>.size else { return }
        withUnsafeBytes(of: &entries) { raw in
            guard let storage = raw.load(as: UnsafeRawPointer?.self) else { return }
            freshet_prefetch(storage + Self.arrayHeaderBytes)
        }
    }

    /// The bytes before an array's first element in its storage object (Swift's
    /// contiguous array storage on 64-bit: metadata, refcount, count, capacity).
    private static let arrayHeaderBytes = 32

    /// Appends in stored order (checkpoint restore).
    mutating func appendRestored(_ item: UInt32, ts: Int64) {
        entries.append(RecentEntry(item: item, ts: ts))
    }
}
