extension Array {
    /// The first index whose element satisfies `predicate`, which must be
    /// false then true along the array (a sorted array's "first after"):
    /// binary search, O(log n). The count timelines and the examples' events
    /// ahead of the watermark search their sorted times with it.
    @inline(__always)
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if predicate(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
