import XCTest

final class FreshetCoreTestsPlaceholder: XCTestCase {
    func testTargetBuilds() {}
}
