import XCTest

final class FreshetKafkaTestsPlaceholder: XCTestCase {
    func testTargetBuilds() {}
}
