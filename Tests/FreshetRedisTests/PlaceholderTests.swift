import XCTest

final class FreshetRedisTestsPlaceholder: XCTestCase {
    func testTargetBuilds() {}
}
