import FreshetCore

/// A user's recent positive items: unique interned item ids ordered by the time
/// of the user's latest positive interaction with each, newest first; ties in
/// time put the greater item id (String `>`) first.
///
/// Keeping only the top `capacity` entries is exact, not an approximation: an
/// item's latest time only grows, and so do the times of the items that pushed
/// it out. An evicted item ranked below `capacity` others; it can re-enter only
/// with an event that outranks the current last entry, and then that event's
/// time is its true latest time (any older event would rank below all of them).
///
/// Stored as two parallel arrays (4 + 8 bytes an entry, no padding) to keep a
/// full 50-entry user under 1 KiB.
struct RecentItems {
    private(set) var items: [UInt32] = []
    private(set) var times: [Int64] = []

    var count: Int { items.count }

    /// Folds in a positive interaction; returns true when the list changed.
    mutating func record(_ item: UInt32, ts: Int64, capacity: Int, names: StringInterner) -> Bool {
        if let k = items.firstIndex(of: item) {
            // Same or older time for an item already listed: its latest time is unchanged.
            if ts <= times[k] { return false }
            items.remove(at: k)
            times.remove(at: k)
        }
        var j = 0
        let n = items.count
        while j < n {
            let t = times[j]
            if t < ts { break }
            if t == ts && !(names[items[j]] > names[item]) { break }
            j += 1
        }
        if j >= capacity { return false } // full and older than all listed
        reserveIfFull(capacity: capacity)
        items.insert(item, at: j)
        times.insert(ts, at: j)
        if items.count > capacity {
            items.removeLast()
            times.removeLast()
        }
        return true
    }

    /// Grows storage in steps that end exactly at `capacity` + 1 (the transient
    /// overflow slot), instead of the default doubling past it.
    private mutating func reserveIfFull(capacity: Int) {
        guard items.count == items.capacity else { return }
        let target = min(capacity + 1, max(4, items.count * 2))
        items.reserveCapacity(target)
        times.reserveCapacity(target)
    }

    /// Appends in stored order (checkpoint restore).
    mutating func appendRestored(_ item: UInt32, ts: Int64) {
        items.append(item)
        times.append(ts)
    }
}
