import FreshetCore

/// Item-frequency sampling with online count updates: a Fenwick (binary indexed)
/// tree over item rows. `add` and `sample` are O(log n); a row's count is zeroed
/// when the row is evicted, so a reused row starts from nothing.
final class FrequencySampler {
    private(set) var counts: [Int64] = []
    private var tree: [Int64] = [0] // 1-based
    private(set) var total: Int64 = 0
    /// Rows with a non-zero count ("items seen", N in the log(N·Q) correction).
    private(set) var nonZero: Int = 0
    private var topBit = 1

    var capacity: Int { counts.count }

    func ensureCapacity(_ rows: Int) {
        guard rows > counts.count else { return }
        var cap = max(16, counts.count)
        while cap < rows { cap *= 2 }
        counts.append(contentsOf: repeatElement(0, count: cap - counts.count))
        // Rebuild the tree in O(n).
        tree = [Int64](repeating: 0, count: cap + 1)
        for i in 1...cap {
            tree[i] += counts[i - 1]
            let j = i + (i & -i)
            if j <= cap { tree[j] += tree[i] }
        }
        topBit = 1
        while topBit * 2 <= cap { topBit *= 2 }
    }

    func add(row: Int, delta: Int64) {
        ensureCapacity(row + 1)
        let before = counts[row]
        let after = before + delta
        precondition(after >= 0)
        counts[row] = after
        if before == 0 && after > 0 { nonZero += 1 }
        if before > 0 && after == 0 { nonZero -= 1 }
        total += delta
        var i = row + 1
        let n = counts.count
        tree.withUnsafeMutableBufferPointer { t in
            while i <= n { t[i] += delta; i += i & -i }
        }
    }

    func clear(row: Int) {
        guard row < counts.count, counts[row] > 0 else { return }
        add(row: row, delta: -counts[row])
    }

    func count(row: Int) -> Int64 { row < counts.count ? counts[row] : 0 }

    /// Row drawn with probability count/total (total must be > 0).
    @inline(__always)
    func sample(_ rng: inout SplitMix64) -> Int {
        var rem = Int64(truncatingIfNeeded: (UInt64(total).multipliedFullWidth(by: rng.next())).high)
        var pos = 0
        var step = topBit
        let n = counts.count
        tree.withUnsafeBufferPointer { t in
            while step > 0 {
                let nxt = pos + step
                if nxt <= n && t[nxt] <= rem {
                    pos = nxt
                    rem -= t[nxt]
                }
                step >>= 1
            }
        }
        return pos // 0-based row: prefix(pos) <= r < prefix(pos+1)
    }

    /// log(N · Q(row)) with Q = count/total: the correction relative to uniform sampling.
    @inline(__always)
    func logCorrection(row: Int) -> Float {
        let c = counts[row]
        guard c > 0, total > 0 else { return 0 }
        return _logf(Float(Double(nonZero) * Double(c) / Double(total)))
    }
}
