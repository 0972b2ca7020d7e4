import XCTest
import FreshetCore
@testable import FreshetFeatures

/// The pane timers (on swift-collections' `Heap`) against a plain oracle:
/// every scheduled slot comes back exactly once, in key order, when its key is due.
final class PaneTimerIndexTests: XCTestCase {
    func testDueSlotsComeBackInKeyOrderExactlyOnce() {
        checkAgainstOracle(seed: 0x9E37_79B9_7F4A_7C15) { next in 1 + Int64(next() % 50) }
    }

    /// Keys the index's memo (64 entries, by the key's low bits) maps to the
    /// same entry: 64 and 128 apart, interleaved, and scheduled again soon
    /// after they fire.
    func testKeysSharingAMemoEntry() {
        checkAgainstOracle(seed: 2021) { next in Int64(next() % 3) + 64 * Int64(next() % 4) }
        checkAgainstOracle(seed: 2022) { next in 1 + Int64(next() % 300) }
    }

    /// Schedules runs of slots at `watermark + ahead()` and pops them as the
    /// watermark moves, against a plain list of what was scheduled.
    private func checkAgainstOracle(seed: UInt64, ahead: (() -> UInt64) -> Int64) {
        var index = PaneTimerIndex()
        var oracle: [(pane: Int64, order: Int, slot: UInt32)] = []
        var random = SplitMix64(seed: seed)  // the same sequence every run
        func next() -> UInt64 { random.next() }
        var order = 0
        var watermark: Int64 = 0
        for round in 0..<200 {
            // Runs of the same pane (as items rolling into a new pane schedule them), some repeats.
            for _ in 0..<Int(next() % 20) {
                let pane = watermark + ahead(next)
                for _ in 0..<Int(1 + next() % 4) {
                    let slot = UInt32(next() % 1_000)
                    index.schedule(slot, at: pane)
                    oracle.append((pane, order, slot))
                    order += 1
                }
            }
            watermark += Int64(next() % 8)
            let due = index.popDue(upTo: watermark)
            let expected = oracle.filter { $0.pane <= watermark }
                .sorted { ($0.pane, $0.order) < ($1.pane, $1.order) }.map(\.slot)
            oracle.removeAll { $0.pane <= watermark }
            XCTAssertEqual(due, expected, "round \(round), watermark \(watermark)")
            XCTAssertEqual(index.pendingKeys, Set(oracle.map(\.pane)).count)
        }
        index.removeAll()
        XCTAssertEqual(index.pendingKeys, 0)
        XCTAssertEqual(index.popDue(upTo: .max), [])
    }

    func testAKeyScheduledAgainAfterFiringFiresAgain() {
        var index = PaneTimerIndex()
        index.schedule(1, at: 5)
        index.schedule(2, at: 5)
        index.schedule(3, at: 3)
        XCTAssertEqual(index.popDue(upTo: 4), [3])
        XCTAssertEqual(index.popDue(upTo: 5), [1, 2])
        index.schedule(4, at: 5)  // the same key as the last run, after it fired
        XCTAssertEqual(index.pendingKeys, 1)
        XCTAssertEqual(index.popDue(upTo: 5), [4])
        XCTAssertEqual(index.popDue(upTo: 100), [])
    }
}
