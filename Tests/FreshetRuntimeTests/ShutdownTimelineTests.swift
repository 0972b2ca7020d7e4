import XCTest
@testable import FreshetRuntime

final class ShutdownTimelineTests: XCTestCase {
    /// Steps are listed in the order they ended, each with the time since the
    /// step before (not since the start), in seconds with milliseconds.
    func testStepsAreListedInOrderWithTheirOwnDurations() {
        let start = ContinuousClock.now
        var now = start
        var timeline = ShutdownTimeline(clock: { now })
        now = start + .milliseconds(5)
        timeline.mark("flush")
        now = start + .milliseconds(1_505)
        timeline.mark("checkpoint")
        now = start + .milliseconds(13_505)
        timeline.mark("final_refresh")
        XCTAssertEqual(timeline.steps.map(\.name), ["flush", "checkpoint", "final_refresh"])
        XCTAssertEqual(timeline.metadata["steps"], "flush=0.005 checkpoint=1.500 final_refresh=12.000")
        XCTAssertEqual(timeline.metadata["total_s"], "13.505")
    }
}
