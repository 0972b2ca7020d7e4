import Foundation
import Histogram

/// Latencies for benchmark reports, on HdrHistogram (hdrhistogram-swift):
/// constant memory however many samples, values kept to 3 significant digits
/// from 1 µs to 1 hour (longer ones are clamped to 1 hour).
package struct LatencyHistogram: Sendable {
    private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1,
                                              highestTrackableValue: LatencyHistogram.highestMicroseconds,
                                              numberOfSignificantValueDigits: .three)

    static let highestMicroseconds: UInt64 = 3_600_000_000

    package init() {}

    /// Records one latency in seconds (negative values, from clock skew, count as 0).
    package mutating func record(seconds: Double) {
        let micros = (max(0, seconds) * 1e6).rounded()
        _ = histogram.record(micros >= Double(Self.highestMicroseconds) ? Self.highestMicroseconds : UInt64(micros))
    }

    package var count: Int { Int(histogram.totalCount) }

    /// The latency in seconds at `percentile` (0...100): the highest value
    /// equivalent to the one at that rank. NaN when nothing was recorded.
    package func seconds(atPercentile percentile: Double) -> Double {
        count == 0 ? .nan : Double(histogram.valueAtPercentile(percentile)) / 1e6
    }

    /// The largest recorded latency in seconds (to the histogram's precision); NaN when empty.
    package var maxSeconds: Double { count == 0 ? .nan : Double(histogram.max) / 1e6 }

    /// "p50 12.3 ms, p90 ..., p99 ..., p99.9 ..., max ..." with values in `unit`.
    package func summary(unit: Unit = .milliseconds) -> String {
        let points: [(String, Double)] = [
            ("p50", seconds(atPercentile: 50)), ("p90", seconds(atPercentile: 90)), ("p99", seconds(atPercentile: 99)),
            ("p99.9", seconds(atPercentile: 99.9)), ("max", maxSeconds),
        ]
        return points.map { "\($0.0) \(unit.format($0.1))" }.joined(separator: ", ")
    }

    package enum Unit: Sendable {
        case milliseconds, seconds

        func format(_ seconds: Double) -> String {
            switch self {
            case .milliseconds: return String(format: "%.1f ms", seconds * 1000)
            case .seconds: return String(format: "%.2f s", seconds)
            }
        }
    }
}
