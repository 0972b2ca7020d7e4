@testable import FreshetRuntime
import XCTest

/// A bounded run's remaining wall time: its lag at the rate of the last few
/// seconds, unknown until there is a rate.
final class BoundedRunEndEstimateTests: XCTestCase {
    func testTheLagAtTheRecentRate() {
        var estimate = BoundedRunEndEstimate()
        XCTAssertNil(estimate.remainingMs(lag: 1_000), "no observation")
        estimate.observe(nowMs: 10_000, consumed: 0)
        estimate.observe(nowMs: 10_500, consumed: 50_000)
        XCTAssertNil(estimate.remainingMs(lag: 1_000), "less than a second observed")
        estimate.observe(nowMs: 12_000, consumed: 200_000)
        XCTAssertEqual(estimate.remainingMs(lag: 1_000_000), 10_000, "100 k records/s")
        XCTAssertNil(estimate.remainingMs(lag: nil), "lag unknown")
        XCTAssertEqual(estimate.remainingMs(lag: 0), 0)
    }

    /// The first seconds (waiting for the group's first assignment, a slow
    /// start) leave the window: the rate is the recent one.
    func testOldObservationsLeaveTheWindow() {
        var estimate = BoundedRunEndEstimate()
        estimate.observe(nowMs: 0, consumed: 0)
        estimate.observe(nowMs: 4_000, consumed: 0)
        for second in 5...12 { estimate.observe(nowMs: Int64(second) * 1_000, consumed: (second - 4) * 200_000) }
        XCTAssertEqual(estimate.remainingMs(lag: 400_000), 2_000, "200 k records/s over the last 5 s, not the run's average")
    }

    func testNoRecordReadMeansNoEstimate() {
        var estimate = BoundedRunEndEstimate()
        estimate.observe(nowMs: 0, consumed: 7)
        estimate.observe(nowMs: 3_000, consumed: 7)
        XCTAssertNil(estimate.remainingMs(lag: 10), "a stalled run has no end in sight")
    }
}
