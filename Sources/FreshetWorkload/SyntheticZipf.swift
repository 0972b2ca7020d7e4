#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Zipf-distributed ranks in `0..<n`: P(k) ∝ 1 / (k + 1)^s. The CDF is
/// precomputed once and sampled by binary search (O(log n) a draw).
package struct SyntheticZipf: Sendable {
    package let cdf: [Double]

    package init(count n: Int, exponent s: Double) {
        precondition(n > 0, "Zipf needs at least one rank")
        var cdf = [Double](repeating: 0, count: n)
        var total = 0.0
        for k in 0..<n {
            total += s == 0 ? 1 : pow(Double(k + 1), -s)
            cdf[k] = total
        }
        for k in 0..<n { cdf[k] /= total }
        cdf[n - 1] = 1
        self.cdf = cdf
    }

    /// The first rank whose cumulative probability reaches `u` in [0, 1).
    @inline(__always)
    package func rank(_ u: Double) -> Int {
        var lo = 0, hi = cdf.count - 1
        while lo < hi {
            let mid = (lo + hi) >> 1
            if cdf[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
