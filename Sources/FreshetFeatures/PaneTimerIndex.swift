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
    /// Schedules come in runs for the same key (every item rolling into a new pane
    /// schedules at the same expiry pane), so remember the last key's list.
    private var lastKey: Int64 = .min
    private var lastList = -1

    var pendingKeys: Int { heap.count }

    mutating func schedule(_ slot: UInt32, at pane: Int64) {
        if pane != lastKey || lastList < 0 {
            if let existing = listOf[pane] {
                lastList = existing
            } else {
                let fresh: Int
                if let recycled = freeLists.popLast() {
                    fresh = recycled
                } else {
                    lists.append([])
                    fresh = lists.count - 1
                }
                listOf[pane] = fresh
                heap.insert(pane)
                lastList = fresh
            }
            lastKey = pane
        }
        lists[lastList].append(slot)
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
            if k == lastKey { lastList = -1 }
        }
        return out
    }

    mutating func removeAll() {
        self = PaneTimerIndex()
    }
}
