import XCTest

final class FreshetEmbeddingsTestsPlaceholder: XCTestCase {
    func testTargetBuilds() {}
}
