import FreshetCore
@testable import FreshetRuntime
import XCTest

/// `RecentEventTimes.laterPositives` against a brute-force count of the
/// recorded times, with out-of-order records and pruning: every time
/// strictly between the bounds and after the pruning bound, per item.
final class RecentEventTimesTests: XCTestCase {
    func testLaterCountsTheTimesStrictlyBetweenItsBounds() {
        var rng = SplitMix64(seed: 5)
        let table = RecentEventTimes(retentionMs: 400)
        var recorded: [(item: String, ts: Int64)] = []
        var bound = Int64.min
        var watermark: Int64 = 0
        for step in 0..<5_000 {
            let item = "i\(rng.next() % 5)"
            if rng.next() % 50 == 0 {
                watermark += Int64(rng.next() % 200)
                table.prune(watermark: watermark)
                // The table's sweep runs when the bound moved by a quarter of the retention.
                if watermark - 400 > bound + 100 { bound = watermark - 400 }
                continue
            }
            let ts = watermark + Int64(rng.next() % 300) - 50
            table.recordPositive(itemId: item, ts: ts)
            recorded.append((item, ts))
            let after = watermark + Int64(rng.next() % 200) - 100
            let before = after + Int64(rng.next() % 150)
            let expected = recorded.filter { $0.item == item && $0.ts > bound && $0.ts > after && $0.ts < before }.count
            XCTAssertEqual(table.laterPositives(itemId: item, after: after, before: before), Int64(expected), "step \(step)")
        }
        XCTAssertLessThan(table.count, recorded.count, "pruning dropped the old times")
    }
}
