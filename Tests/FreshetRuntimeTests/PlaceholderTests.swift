import XCTest

final class FreshetRuntimeTestsPlaceholder: XCTestCase {
    func testTargetBuilds() {}
}
