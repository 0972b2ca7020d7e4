@testable import FreshetEmbeddings
import FreshetCore
import XCTest

/// The co-occurrence rows' block store against an array of arrays.
final class EntryRowStoreTests: XCTestCase {
    func testRowsBehaveAsArraysThroughGrowthRemovalClearAndReplace() {
        let store = EntryRowStore<UInt64>()
        var model: [[UInt64]] = []
        var random = FreshetCore.SplitMix64(seed: 7)
        for _ in 0..<20 { model.append([]); XCTAssertEqual(store.appendRow(), model.count - 1) }
        for step in 0..<20_000 {
            let r = random.nextInt(model.count)
            switch random.nextInt(100) {
            case 0:
                store.clear(r); model[r] = []
            case 1:
                let fresh = (0..<random.nextInt(40)).map { _ in UInt64(random.nextInt(1_000)) }
                store.replace(r, with: fresh); model[r] = fresh
            case 2..<6:
                let cut = UInt64(random.nextInt(1_000))
                let removed = store.removeAll(in: r) { $0 < cut }
                let before = model[r].count
                model[r].removeAll { $0 < cut }
                XCTAssertEqual(removed, before - model[r].count)
            default:
                let value = UInt64(step)
                store.append(value, to: r); model[r].append(value)
            }
            XCTAssertEqual(store.count(r), model[r].count)
        }
        for r in model.indices { XCTAssertEqual(Array(store.entries(r)), model[r], "row \(r)") }
        // Writes through `entries` land in the row.
        if let r = model.indices.first(where: { !model[$0].isEmpty }) {
            store.entries(r)[0] = 42
            XCTAssertEqual(store.entries(r)[0], 42)
        }
        let entries = model.reduce(0) { $0 + $1.count }
        XCTAssertGreaterThanOrEqual(store.allocatedBytes, entries * 8, "capacity at least the entries")
    }
}
