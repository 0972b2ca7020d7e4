/// Event-time timers keyed by pane: slots to wake when the watermark's pane
/// reaches a key. A binary min-heap of distinct keys plus a bucket per key, so
/// advancing the watermark touches only due buckets, never all items.
/// Duplicate slots in a bucket are allowed (wake-ups are idempotent).
struct PaneTimerIndex {
    /// Pending key -> index into `lists`.
    private var listOf: [Int64: Int] = [:]
    /// Slot lists, recycled (with their capacity) once fired.
    private var lists: [[UInt32]] = []
    private var freeLists: [Int] = []
    private var heap: [Int64] = []
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
                heapPush(pane)
                lastList = fresh
            }
            lastKey = pane
        }
        lists[lastList].append(slot)
    }

    /// Removes and returns every slot whose key is `<= pane`, in key order.
    mutating func popDue(upTo pane: Int64) -> [UInt32] {
        var out: [UInt32] = []
        while let k = heap.first, k <= pane {
            heapPop()
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

    private mutating func heapPush(_ k: Int64) {
        heap.append(k)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if heap[parent] <= heap[i] { break }
            heap.swapAt(parent, i)
            i = parent
        }
    }

    private mutating func heapPop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        let n = heap.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && heap[l] < heap[m] { m = l }
            if r < n && heap[r] < heap[m] { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}
