import XCTest
import FreshetCore
@testable import FreshetFeatures

/// `PaneCounts` against the plain reading of an item's panes (a map from
/// pane to counts) over generated runs of adds and removals: in order, late,
/// repeated, and removals of none, one, several or all panes (the moves of
/// `removePanes` in particular).
final class PaneCountsTests: XCTestCase {
    func testMatchesAMapOfPanes() {
        var rng = SplitMix64(seed: 2126)
        for run in 0..<1_500 {
            var counts = PaneCounts()
            var model: [Int32: (popularity: UInt32, impressions: UInt32)] = [:]
            var top: Int32 = Int32(rng.nextInt(5))
            let limit = 1 + rng.nextInt(40)
            for step in 0..<(20 + rng.nextInt(300)) {
                let context = "run \(run) step \(step)"
                switch rng.nextInt(10) {
                case 0...6:
                    // Mostly the newest pane or the next; sometimes a late one.
                    if rng.nextInt(3) == 0 { top += Int32(1 + rng.nextInt(3)) }
                    let pane = rng.nextInt(6) == 0 ? top - Int32(rng.nextInt(60)) : top
                    let positive = rng.nextInt(2) == 0
                    let isNew = counts.add(pane: pane, popularity: positive ? 1 : 0, impressions: positive ? 0 : 1,
                                           olderLimit: limit)
                    XCTAssertEqual(isNew, model[pane] == nil, context)
                    let old = model[pane] ?? (0, 0)
                    model[pane] = (old.popularity + (positive ? 1 : 0), old.impressions + (positive ? 0 : 1))
                default:
                    let lo = top - Int32(rng.nextInt(70))
                    XCTAssertEqual(counts.newestPane(below: lo), model.keys.filter { $0 < lo }.max(), context)
                    let removed = counts.removePanes(below: lo)
                    XCTAssertEqual(removed, model.keys.contains { $0 < lo }, context)
                    model = model.filter { $0.key >= lo }
                }
                check(counts, model, top: top, context, &rng)
            }
        }
    }

    private func check(_ counts: PaneCounts, _ model: [Int32: (popularity: UInt32, impressions: UInt32)],
                       top: Int32, _ context: String, _ rng: inout SplitMix64) {
        let panes = model.keys.sorted()
        XCTAssertEqual(counts.entries.map(\.pane), panes, context)
        XCTAssertEqual(counts.entries.map(\.popularity), panes.map { model[$0]!.popularity }, context)
        XCTAssertEqual(counts.entries.map(\.impressions), panes.map { model[$0]!.impressions }, context)
        XCTAssertEqual(counts.count, panes.count, context)
        XCTAssertEqual(counts.first, panes.first, context)
        let lo = top - Int32(rng.nextInt(80)), hi = lo + Int32(rng.nextInt(80))
        let inRange = panes.filter { $0 >= lo && $0 <= hi }
        let totals = counts.totals(lo: lo, hi: hi)
        XCTAssertEqual(totals.popularity, inRange.reduce(0) { $0 + Int64(model[$1]!.popularity) }, context)
        XCTAssertEqual(totals.impressions, inRange.reduce(0) { $0 + Int64(model[$1]!.impressions) }, context)
        XCTAssertEqual(counts.hasPane(in: lo, hi), !inRange.isEmpty, context)
    }
}
