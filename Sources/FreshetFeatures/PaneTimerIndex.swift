/// Event-time timers keyed by pane: slots to wake when the watermark's pane
/// reaches a key. A binary min-heap of distinct keys plus a bucket per key, so
/// advancing the watermark touches only due buckets, never all items.
/// Duplicate slots in a bucket are allowed (wake-ups are idempotent).
struct PaneTimerIndex {
    private var buckets: [Int64: [UInt32]] = [:]
    private var heap: [Int64] = []

    var pendingKeys: Int { heap.count }

    mutating func schedule(_ slot: UInt32, at pane: Int64) {
        if buckets[pane]?.append(slot) == nil {
            buckets[pane] = [slot]
            heapPush(pane)
        }
    }

    /// Removes and returns every slot whose key is `<= pane`, in key order.
    mutating func popDue(upTo pane: Int64) -> [UInt32] {
        var out: [UInt32] = []
        while let k = heap.first, k <= pane {
            heapPop()
            if let b = buckets.removeValue(forKey: k) { out.append(contentsOf: b) }
        }
        return out
    }

    mutating func removeAll() {
        buckets.removeAll()
        heap.removeAll()
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
