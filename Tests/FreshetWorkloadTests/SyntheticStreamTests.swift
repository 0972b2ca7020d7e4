import FreshetCore
import FreshetWorkload
import XCTest

final class SyntheticStreamTests: XCTestCase {
    func config(seed: UInt64) -> SyntheticConfig {
        var config = SyntheticConfig(seed: seed, users: 200, items: 500, startMs: 1_767_225_600_000, spanMs: 86_400_000,
                                     nowMs: 1_767_225_600_000 + 2 * 86_400_000)
        config.badFraction = 0.05
        config.lateFraction = 0.05
        config.outOfOrderMs = 60_000
        return config
    }

    func testSameSeedSameBytesDifferentSeedDifferentBytes() {
        let a = Array(SyntheticStream(config: config(seed: 1), count: 2_000)).map(\.json)
        let b = Array(SyntheticStream(config: config(seed: 1), count: 2_000)).map(\.json)
        let c = Array(SyntheticStream(config: config(seed: 2), count: 2_000)).map(\.json)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }

    /// What the generator says an event is, the decoder agrees with: the
    /// integration tests' oracle relies on this.
    func testEveryEventDecodesToWhatTheGeneratorExpects() {
        let decoder = EventDecoder()
        let now = 1_767_225_600_000 + 2 * 86_400_000 as Int64
        var reasons: Set<BadInput.Reason> = []
        var interactions = 0, impressions = 0
        for event in SyntheticStream(config: config(seed: 3), count: 5_000) {
            switch event.expected {
            case .interaction(let expected):
                interactions += 1
                XCTAssertEqual(try? decoder.decodeInteraction(event.json, messageTimestampMs: event.timestampMs, nowMs: now), expected)
            case .impression(let expected):
                impressions += 1
                XCTAssertEqual(try? decoder.decodeImpression(event.json, messageTimestampMs: event.timestampMs, nowMs: now), expected)
            case .bad(let reason):
                reasons.insert(reason)
                let topicDecode: () throws -> Void = event.topic == .impressions
                    ? { _ = try decoder.decodeImpression(event.json, messageTimestampMs: event.timestampMs, nowMs: now) }
                    : { _ = try decoder.decodeInteraction(event.json, messageTimestampMs: event.timestampMs, nowMs: now) }
                XCTAssertThrowsError(try topicDecode()) { error in
                    XCTAssertEqual((error as? BadInput)?.reason, reason)
                }
            }
        }
        XCTAssertGreaterThan(interactions, impressions, "2:1 interactions to impressions")
        XCTAssertGreaterThan(impressions, 1_000)
        XCTAssertGreaterThanOrEqual(reasons.count, 6, "bad events cover the kinds of bad input: \(reasons)")
    }
}
