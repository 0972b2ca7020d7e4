import HeapModule

/// Event-time timers keyed by pane: slots to wake when the watermark's pane
/// reaches a key. A min-heap of distinct keys (swift-collections' `Heap`) plus a bucket per key, so
/// advancing the watermark touches only due buckets, never all items.
/// Duplicate slots in a bucket are allowed (wake-ups are idempotent).
struct PaneTimerIndex {
    /// Pending key -> index into `lists`.
    private var listOf: [Int64: Int] = [:]
    /// Slot lists, recycled (with their capacity) once fired.
    private var lists: [[UInt32]] = []
    private var freeLists: [Int] = []
    /// Distinct pending keys; the smallest is the next due.
    private var heap = Heap<Int64>()
    /// The lists of recently scheduled keys, direct-mapped by the key's low
    /// bits (`memoLists` -1: empty), so that a schedule seldom looks its key
    /// up in `listOf` (~135 instructions, callgrind). Schedules come in runs
    /// over a few keys: items rolling into a new pane schedule that pane and,
    /// now and then, their expiry pane; a watermark's wakes schedule each
    /// item's next expiry, one of a few panes. (A memo of the last key alone
    /// missed a third of the time.) An entry is emptied when its key fires.
    private var memoKeys = [Int64](repeating: 0, count: PaneTimerIndex.memoSize)
    private var memoLists = [Int](repeating: -1, count: PaneTimerIndex.memoSize)
    private static let memoSize = 64

    var pendingKeys: Int { heap.count }

    /// Inline in the store (a call per new pane and per wake was ~18
    /// instructions of frame); a key the memo misses is looked up out of line.
    @inline(__always)
    mutating func schedule(_ slot: UInt32, at pane: Int64) {
        let m = Self.memoEntry(pane)
        var list = memoLists[m]
        if list < 0 || memoKeys[m] != pane {
            list = listIndex(for: pane)
            memoKeys[m] = pane
            memoLists[m] = list
        }
        lists[list].append(slot)
    }

    @inline(__always)
    private static func memoEntry(_ pane: Int64) -> Int {
        Int(truncatingIfNeeded: pane) & (memoSize &- 1)
    }

    /// The list of `pane`, made (and its key put on the heap) when new.
    @inline(never)
    private mutating func listIndex(for pane: Int64) -> Int {
        if let existing = listOf[pane] { return existing }
        let fresh: Int
        if let recycled = freeLists.popLast() {
            fresh = recycled
        } else {
            lists.append([])
            fresh = lists.count - 1
        }
        listOf[pane] = fresh
        heap.insert(pane)
        return fresh
    }

    /// Removes and returns every slot whose key is `<= pane`, in key order.
    mutating func popDue(upTo pane: Int64) -> [UInt32] {
        var out: [UInt32] = []
        while let k = heap.min, k <= pane {
            heap.removeMin()
            guard let idx = listOf.removeValue(forKey: k) else { continue }
            out.append(contentsOf: lists[idx])
            lists[idx].removeAll(keepingCapacity: true)
            freeLists.append(idx)
            let m = Self.memoEntry(k)
            if memoKeys[m] == k { memoLists[m] = -1 }
        }
        return out
    }

    mutating func removeAll() {
        self = PaneTimerIndex()
    }
}
