import Foundation
import FreshetCore
import XCTest

/// Background threads (the embeddings' counting and refresh) run at a lower
/// priority than the processing loop, and lowering one leaves the others alone.
final class BackgroundPriorityTests: XCTestCase {
    /// Written by the thread before it signals, read by the test after the wait.
    private final class Outcome: @unchecked Sendable {
        var lowered = false
        var nice: Int32?
    }

    func testLoweringAThreadLeavesTheOtherThreadsPriority() throws {
        #if os(Linux)
        let before = try XCTUnwrap(BackgroundPriority.currentThreadNice())
        try XCTSkipIf(before >= BackgroundPriority.niceValue, "the tests already run at nice \(before)")
        let done = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        let thread = Thread {
            outcome.lowered = BackgroundPriority.lowerCurrentThread()
            outcome.nice = BackgroundPriority.currentThreadNice()
            done.signal()
        }
        thread.start()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertTrue(outcome.lowered)
        XCTAssertEqual(outcome.nice, BackgroundPriority.niceValue)
        XCTAssertEqual(BackgroundPriority.currentThreadNice(), before, "only the thread that asked runs lower")
        #else
        throw XCTSkip("per-thread nice values are Linux's")
        #endif
    }
}
