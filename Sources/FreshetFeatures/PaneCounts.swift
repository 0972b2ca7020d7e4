/// One pane's counts for one item. `pane` is relative to the store's base pane so
/// an entry is 12 bytes.
struct PaneCount {
    var pane: Int32
    var popularity: UInt32
    var impressions: UInt32
}

/// An item's non-empty panes, sorted by pane, contiguous in memory.
/// Most events land in the newest pane, so lookups start from the end.
struct PaneCounts {
    private(set) var entries: [PaneCount] = []

    var isEmpty: Bool { entries.isEmpty }
    var first: Int32? { entries.first?.pane }

    /// Adds to `pane`'s counters (saturating); returns true when the pane is new.
    @inline(__always)
    mutating func add(pane: Int32, popularity: UInt32, impressions: UInt32) -> Bool {
        var j = entries.count
        while j > 0 && entries[j - 1].pane > pane { j -= 1 }
        if j > 0 && entries[j - 1].pane == pane {
            entries[j - 1].popularity = entries[j - 1].popularity.addingSaturating(popularity)
            entries[j - 1].impressions = entries[j - 1].impressions.addingSaturating(impressions)
            return false
        }
        if entries.count == entries.capacity {
            // Grow gently: most items have few panes.
            entries.reserveCapacity(max(2, entries.count + entries.count / 2 + 1))
        }
        entries.insert(PaneCount(pane: pane, popularity: popularity, impressions: impressions), at: j)
        return true
    }

    /// Sums over panes in `lo...hi`.
    func totals(lo: Int32, hi: Int32) -> (popularity: Int64, impressions: Int64) {
        var p: Int64 = 0, i: Int64 = 0
        for e in entries where e.pane >= lo && e.pane <= hi {
            p += Int64(e.popularity)
            i += Int64(e.impressions)
        }
        return (p, i)
    }

    /// True when some pane lies in `lo...hi`.
    func hasPane(in lo: Int32, _ hi: Int32) -> Bool {
        entries.contains { $0.pane >= lo && $0.pane <= hi }
    }

    /// Frees panes below `lo`; returns true when any was removed.
    mutating func removePanes(below lo: Int32) -> Bool {
        var k = 0
        while k < entries.count && entries[k].pane < lo { k += 1 }
        guard k > 0 else { return false }
        if k == entries.count { entries = [] } else { entries.removeFirst(k) }
        return true
    }

    mutating func appendRestored(_ e: PaneCount) { entries.append(e) }
}

extension UInt32 {
    @inline(__always)
    func addingSaturating(_ other: UInt32) -> UInt32 {
        let (r, o) = addingReportingOverflow(other)
        return o ? .max : r
    }
}
