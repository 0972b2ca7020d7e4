/// One pane's counts for one item. `pane` is relative to the store's base pane so
/// an entry is 12 bytes.
struct PaneCount: Equatable {
    var pane: Int32
    var popularity: UInt32
    var impressions: UInt32
}

/// An item's non-empty panes, sorted by pane.
///
/// The newest pane is kept inline: nearly every event lands in it, and reading it
/// then costs no pointer chase into a separate allocation (measured: the chase was
/// the top cache miss of the item operator). Older panes live in one contiguous array.
/// Invariant: `older` is empty when there is no newest pane, and every older pane is
/// below the newest.
struct PaneCounts {
    /// Marks "no newest pane"; `ItemFeatureStore` never stores this relative pane.
    static let none = Int32.min

    private(set) var older: [PaneCount] = []
    private var newest = PaneCount(pane: PaneCounts.none, popularity: 0, impressions: 0)
    /// The oldest stored pane (`older.first` or the newest), kept inline: a
    /// watermark timer asks "anything to expire?" and "a pane in range?" of
    /// thousands of items per pane, and answering from here instead of
    /// `older`'s header saves a cache miss per item (it fits in the struct's
    /// padding). `none` when empty.
    private var oldest = PaneCounts.none

    var isEmpty: Bool { newest.pane == Self.none }

    /// The oldest stored pane.
    var first: Int32? { isEmpty ? nil : oldest }

    /// All panes in order (for snapshots).
    var entries: [PaneCount] { isEmpty ? [] : older + [newest] }

    /// Number of stored panes.
    var count: Int { isEmpty ? 0 : older.count + 1 }

    /// Calls `body` with every pane in order, like iterating `entries` without
    /// building that array (checkpoints encode thousands of items).
    @inline(__always)
    func forEach(_ body: (PaneCount) -> Void) {
        guard !isEmpty else { return }
        for e in older { body(e) }
        body(newest)
    }

    /// Adds to `pane`'s counters (saturating); returns true when the pane is new.
    @inline(__always)
    /// `olderLimit` is the most older panes the window can hold (windowPanes − 1): growth
    /// stops there instead of overshooting, which keeps a full item near 2 KiB.
    mutating func add(pane: Int32, popularity: UInt32, impressions: UInt32, olderLimit: Int) -> Bool {
        if pane == newest.pane {
            newest.popularity = newest.popularity.addingSaturating(popularity)
            newest.impressions = newest.impressions.addingSaturating(impressions)
            return false
        }
        let entry = PaneCount(pane: pane, popularity: popularity, impressions: impressions)
        if isEmpty {
            newest = entry
            oldest = pane
            return true
        }
        if pane > newest.pane {
            reserveOne(olderLimit)
            older.append(newest)
            newest = entry
            return true
        }
        return addOlder(entry, olderLimit)
    }

    /// A late event for a pane below the newest.
    private mutating func addOlder(_ e: PaneCount, _ olderLimit: Int) -> Bool {
        // One uniqueness check for the search and the update (not one per access).
        let insertAt: Int? = older.withUnsafeMutableBufferPointer { o in
            var j = o.count
            while j > 0 && o[j &- 1].pane > e.pane { j &-= 1 }
            if j > 0 && o[j &- 1].pane == e.pane {
                o[j &- 1].popularity = o[j &- 1].popularity.addingSaturating(e.popularity)
                o[j &- 1].impressions = o[j &- 1].impressions.addingSaturating(e.impressions)
                return nil
            }
            return j
        }
        guard let j = insertAt else { return false }
        reserveOne(olderLimit)
        older.insert(e, at: j)
        if j == 0 { oldest = e.pane }
        return true
    }

    /// Grow gently: most items have few panes, and doubling would waste up to half.
    private mutating func reserveOne(_ limit: Int) {
        guard older.count == older.capacity else { return }
        let grown = max(2, older.count + older.count / 2 + 1)
        // Future panes can exceed the limit; then grow normally.
        older.reserveCapacity(older.count < limit ? min(grown, limit) : grown)
    }

    /// Sums over panes in `lo...hi`.
    func totals(lo: Int32, hi: Int32) -> (popularity: Int64, impressions: Int64) {
        guard !isEmpty else { return (0, 0) }
        var p: Int64 = 0, i: Int64 = 0
        if newest.pane >= lo && newest.pane <= hi {
            p = Int64(newest.popularity)
            i = Int64(newest.impressions)
        }
        for e in older where e.pane >= lo && e.pane <= hi {
            p += Int64(e.popularity)
            i += Int64(e.impressions)
        }
        return (p, i)
    }

    /// True when some pane lies in `lo...hi`.
    func hasPane(in lo: Int32, _ hi: Int32) -> Bool {
        guard !isEmpty else { return false }
        if newest.pane >= lo && newest.pane <= hi { return true }
        // Older panes lie in [oldest, newest): none in range without looking.
        if oldest > hi || newest.pane < lo || oldest == newest.pane { return false }
        return older.contains { $0.pane >= lo && $0.pane <= hi }
    }

    /// The newest pane below `lo` (the newest one `removePanes(below: lo)` would free).
    func newestPane(below lo: Int32) -> Int32? {
        guard !isEmpty else { return nil }
        if newest.pane < lo { return newest.pane }
        if oldest >= lo { return nil } // nothing below `lo`, `older` untouched
        // Sorted ascending and the panes below `lo` are the few oldest: scan
        // from the front (from the back would walk the whole window).
        var k = 0
        while k < older.count && older[k].pane < lo { k &+= 1 }
        return k > 0 ? older[k &- 1].pane : nil
    }

    /// Frees panes below `lo`; returns true when any was removed.
    mutating func removePanes(below lo: Int32) -> Bool {
        guard !isEmpty else { return false }
        if newest.pane < lo {
            older = []
            newest.pane = Self.none
            oldest = Self.none
            return true
        }
        if oldest >= lo { return false } // nothing below `lo`, `older` untouched
        var k = 0
        while k < older.count && older[k].pane < lo { k += 1 }
        guard k > 0 else { return false }
        if k == older.count { older = [] } else { removeOlder(first: k) }
        oldest = older.first?.pane ?? newest.pane
        return true
    }

    /// `older.removeFirst(k)` (0 < k < count) as one move of the kept panes
    /// and `removeLast()` k times (usually once: one pane expires per
    /// wake): `removeFirst` went through the generic `replaceSubrange`,
    /// ~65 instructions a call besides the move (callgrind).
    private mutating func removeOlder(first k: Int) {
        older.withUnsafeMutableBufferPointer { o in
            // Safe: both ranges lie in `o` (k < o.count), `PaneCount` is a
            // trivial type, and `update(from:count:)` allows the overlap.
            guard let start = o.baseAddress else { return }
            start.update(from: start + k, count: o.count &- k)
        }
        for _ in 0..<k { older.removeLast() }
    }

    /// Appends in increasing pane order (snapshot restore).
    mutating func appendRestored(_ e: PaneCount, olderLimit: Int) {
        _ = add(pane: e.pane, popularity: e.popularity, impressions: e.impressions, olderLimit: olderLimit)
    }
}

extension UInt32 {
    @inline(__always)
    func addingSaturating(_ other: UInt32) -> UInt32 {
        let (r, o) = addingReportingOverflow(other)
        return o ? .max : r
    }
}
