import XCTest
@testable import FreshetRuntime

/// Benchmark latencies on HdrHistogram: percentiles to 3 significant digits.
final class LatencyHistogramTests: XCTestCase {
    func testPercentilesOfAKnownSample() {
        var h = LatencyHistogram()
        for ms in 1...1000 { h.record(seconds: Double(ms) / 1000) }
        XCTAssertEqual(h.count, 1000)
        // Rank-based: p50 of 1..1000 ms is 500 ms, p99.9 is 999 ms; HdrHistogram
        // reports the top of the value's bucket (within 0.1 %).
        XCTAssertEqual(h.seconds(atPercentile: 50), 0.500, accuracy: 0.0005)
        XCTAssertEqual(h.seconds(atPercentile: 90), 0.900, accuracy: 0.0009)
        XCTAssertEqual(h.seconds(atPercentile: 99), 0.990, accuracy: 0.001)
        XCTAssertEqual(h.seconds(atPercentile: 99.9), 0.999, accuracy: 0.001)
        XCTAssertEqual(h.maxSeconds, 1.000, accuracy: 0.001)
        // The top of each value's bucket (3 significant digits of microseconds).
        XCTAssertEqual(h.summary(), "p50 500.2 ms, p90 900.1 ms, p99 990.2 ms, p99.9 999.4 ms, max 1000.4 ms")
    }

    func testEmptySkewAndClamping() {
        var h = LatencyHistogram()
        XCTAssertTrue(h.seconds(atPercentile: 50).isNaN)
        XCTAssertTrue(h.maxSeconds.isNaN)
        h.record(seconds: -0.2)  // clock skew counts as 0
        XCTAssertEqual(h.seconds(atPercentile: 100), 0)
        h.record(seconds: 10_000)  // beyond the hour: clamped, still counted
        XCTAssertEqual(h.count, 2)
        XCTAssertEqual(h.maxSeconds, 3600, accuracy: 3.6)
        XCTAssertEqual(h.summary(unit: .seconds).components(separatedBy: ", ").count, 5)
    }
}
