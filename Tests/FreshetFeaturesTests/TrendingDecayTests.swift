import XCTest
import Foundation
import FreshetCore
@testable import FreshetFeatures

final class TrendingDecayTests: XCTestCase {
    let decay = TrendingDecay(halfLifeMs: 3_600_000, anchorMs: 1_577_836_800_000)

    func direct(_ ts: [EventTimeMs], at w: EventTimeMs) -> Double {
        ts.reduce(0) { $0 + pow(2, -Double(w - $1) / 3_600_000) }
    }

    func score(_ ts: [EventTimeMs]) -> Double? {
        ts.reduce(nil as Double?) { decay.combine($0, decay.log2Contribution(ts: $1)) }
    }

    func testLogSumExpMatchesDirectSum() {
        let w: EventTimeMs = 1_732_700_000_000
        let events: [EventTimeMs] = [w - 1, w - 3_600_000, w - 7_200_000, w - 100_000_000, w]
        let s = score(events)!
        XCTAssertEqual(decay.decayedCount(log2Score: s, at: w), direct(events, at: w), accuracy: 1e-9)
        XCTAssertEqual(decay.decayedCount(log2Score: s, at: w + 3_600_000), direct(events, at: w + 3_600_000),
                       accuracy: 1e-9)
        XCTAssertEqual(decay.combine(nil, 5), 5)
        XCTAssertEqual(decay.combine(3, 3), 4, accuracy: 1e-12)
    }

    func testOrderingEqualsDecayedCountOrderingAtAnyWatermark() {
        let w: EventTimeMs = 1_732_700_000_000
        var rng = SystemRandomNumberGenerator()
        let items: [[EventTimeMs]] = (0..<30).map { _ in
            (0..<Int.random(in: 1...20, using: &rng)).map { _ in w - EventTimeMs.random(in: 0...86_400_000, using: &rng) }
        }
        let scores = items.map { score($0)! }
        for at in [w, w + 10_000_000] {
            let byScore = (0..<30).sorted { scores[$0] > scores[$1] }
            let byDirect = (0..<30).sorted { direct(items[$0], at: at) > direct(items[$1], at: at) }
            XCTAssertEqual(byScore, byDirect)
        }
    }

    func testStoreFeedsTrendingOnlyFromPositives() {
        let s = ItemFeatureStore(panes: PaneSpec(), trending: decay)
        let t: EventTimeMs = 1_732_700_000_000
        s.apply(ItemEvent(itemId: "a", userId: "u", ts: t, kind: .impression(position: 1)), watermark: nil)
        XCTAssertNil(s.features(of: "a")?.trendingLog2Score)
        s.apply(ItemEvent(itemId: "a", userId: "u", ts: t, kind: .interaction(.skip, dwellMs: nil)), watermark: nil)
        XCTAssertNil(s.features(of: "a")?.trendingLog2Score)
        s.apply(ItemEvent(itemId: "a", userId: "u", ts: t, kind: .interaction(.like, dwellMs: nil)), watermark: nil)
        XCTAssertEqual(s.features(of: "a")?.trendingLog2Score, decay.log2Contribution(ts: t))
    }
}
