import XCTest
@testable import FreshetRuntime

/// An instance out of its consumer group is warned about after 30 s, then
/// every 30 s while it lasts; joining resets the clock.
final class GroupJoinWatchTests: XCTestCase {
    func testWarnsAfterThirtySecondsOutOfTheGroupThenEveryThirty() {
        var watch = GroupJoinWatch()
        var warnings: [Int64] = []
        for t in stride(from: Int64(0), through: 95_000, by: 500) {
            if let out = watch.check(memberOfGroup: false, nowMs: 1_000 + t) { warnings.append(out) }
        }
        XCTAssertEqual(warnings, [30_000, 60_000, 90_000])
    }

    func testJoiningResetsTheWait() {
        var watch = GroupJoinWatch()
        XCTAssertNil(watch.check(memberOfGroup: false, nowMs: 0))
        XCTAssertNil(watch.check(memberOfGroup: false, nowMs: 29_000))
        XCTAssertNil(watch.check(memberOfGroup: true, nowMs: 29_500), "joined in time: no warning")
        XCTAssertNil(watch.check(memberOfGroup: false, nowMs: 40_000), "out again (a lost session): the wait starts over")
        XCTAssertNil(watch.check(memberOfGroup: false, nowMs: 69_000))
        XCTAssertEqual(watch.check(memberOfGroup: false, nowMs: 70_000), 30_000)
        XCTAssertNil(watch.check(memberOfGroup: true, nowMs: 80_000))
        XCTAssertNil(watch.check(memberOfGroup: true, nowMs: 200_000), "a member is never warned about")
    }
}
