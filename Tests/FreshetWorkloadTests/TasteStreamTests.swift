import FreshetEmbeddings
import FreshetWorkload
import XCTest

/// The taste stream is seeded, time-ordered, and has the structure it claims:
/// power-law popularity and sessions that stay in a user's tastes.
final class TasteStreamTests: XCTestCase {
    func testSeededOrderedAndPowerLaw() {
        var config = TasteStreamConfig()
        config.interactions = 8_000
        let events = TasteStream.events(config)
        XCTAssertEqual(events.count, 8_000)
        XCTAssertEqual(events, TasteStream.events(config), "same seed, same stream")
        XCTAssertTrue(zip(events, events.dropFirst()).allSatisfy { $0.ts <= $1.ts }, "ordered by time")
        var counts: [ByteId: Int] = [:]
        for e in events { counts[ByteId(e.itemId), default: 0] += 1 }
        let sorted = counts.values.sorted(by: >)
        let top1Percent = sorted.prefix(max(1, config.items / 100)).reduce(0, +)
        XCTAssertGreaterThan(Double(top1Percent) / Double(events.count), 0.10, "the top 1% of items take over 10% of interactions")
        XCTAssertGreaterThan(Double(events.filter { $0.action == .skip }.count) / Double(events.count), 0.02)
        // Consecutive events of a user usually repeat a topic: the co-occurrence signal.
        let model = CooccurrenceModel(config: CooccurrenceConfig(dimension: 16), refreshEvery: 2_000)
        let (_, session) = SessionEvaluator().evaluate(events.map { .interaction($0) }, model: model)
        XCTAssertGreaterThan(session.recallLift, 1.5, "sessions carry co-consumption structure")
    }
}
