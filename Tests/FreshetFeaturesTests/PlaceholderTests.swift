import XCTest

final class FreshetFeaturesTestsPlaceholder: XCTestCase {
    func testTargetBuilds() {}
}
