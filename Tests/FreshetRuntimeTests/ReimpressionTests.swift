import FreshetCore
import FreshetEmbeddings
@testable import FreshetRuntime
import XCTest

/// An item shown to a user again after the first showing's window ended in
/// event time is a new impression, also when both reach the join before its
/// watermark closes the first (a replay: the counts stage releases a user's
/// records in one batch). Found by a user's replay: the second impression
/// was folded into the first, its example lost, and the click on it came out
/// `late` with the first one's context.
final class ReimpressionTests: KeyedExamplesTestCase {
    func testAShowingAfterTheWindowIsANewImpression() throws {
        let d = driver()
        let t = base + hour
        impression(d, "u1", ["ri"], at: t, request: "q1")
        impression(d, "u1", ["ri"], at: t + 20 * 60 * second, request: "q2")
        interaction(d, "u1", "ri", at: t + 22 * 60 * second)
        // Within the window of the second: folded into it.
        impression(d, "u1", ["ri"], at: t + 25 * 60 * second, request: "q3")
        d.runUntilQuiet()
        clock(d, at: t + 3 * hour)
        let examples = try d.examples.flatMap { try ExampleCodec.decodeBundle(ExampleCodec.header + $0) }
            .filter { $0.userId == "u1" }
            .map { "\($0.label) \($0.requestId ?? "-") \(($0.impressionTs ?? 0) - t) late=\($0.late)" }.sorted()
        XCTAssertEqual(examples, ["negative q1 0 late=false", "positive q2 1200000 late=false"])
    }
}
