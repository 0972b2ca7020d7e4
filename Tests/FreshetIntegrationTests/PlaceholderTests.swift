import XCTest

final class FreshetIntegrationTestsPlaceholder: XCTestCase {
    func testTargetBuilds() {}
}
