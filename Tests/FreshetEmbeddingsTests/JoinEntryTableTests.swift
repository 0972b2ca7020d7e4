import FreshetCore
@testable import FreshetEmbeddings
import XCTest

/// The join's entry table against a `Dictionary` under random inserts,
/// updates and removals, with keys from small pools (as the join makes them:
/// user slot << 32 | item slot), so long probe runs and backward-shift
/// deletion are exercised.
final class JoinEntryTableTests: XCTestCase {
    func entry(_ n: Int) -> JoinEntry {
        JoinEntry(impressionTs: Int64(n), interactionCount: 0, popularity7d: 0, impressions7d: 0,
                  seq: UInt32(truncatingIfNeeded: n), request: 0, position: 0, flags: 0)
    }

    func testMatchesADictionaryUnderRandomOperations() {
        var rng = SplitMix64(seed: 7)
        for pool in [8, 40, 300, 5_000] {
            var table = JoinEntryTable()
            var reference: [UInt64: Int64] = [:]
            let keys: [UInt64] = (0..<pool).map { UInt64($0 % 97) << 32 | UInt64($0 / 97 * 3) }
            for step in 0..<60_000 {
                let key = keys[Int(rng.next() % UInt64(pool))]
                switch rng.next() % 4 {
                case 0, 1:
                    table[key] = entry(step)
                    reference[key] = Int64(step)
                case 2:
                    XCTAssertEqual(table.removeValue(forKey: key)?.impressionTs, reference.removeValue(forKey: key))
                default:
                    XCTAssertEqual(table[key]?.impressionTs, reference[key])
                }
                XCTAssertEqual(table.count, reference.count)
            }
            for key in keys { XCTAssertEqual(table[key]?.impressionTs, reference[key], "key \(key)") }
        }
    }

    func testKeyZeroAndSettingNilRemove() {
        var table = JoinEntryTable(minimumCapacity: 2)
        table[0] = entry(1)
        table[1 << 32] = entry(2)
        XCTAssertEqual(table[0]?.impressionTs, 1)
        table[0] = nil
        XCTAssertNil(table[0])
        XCTAssertEqual(table[1 << 32]?.impressionTs, 2)
        XCTAssertEqual(table.count, 1)
        XCTAssertNil(table.removeValue(forKey: 42))
    }

    func testGrowsPastItsCapacity() {
        var table = JoinEntryTable()
        let start = table.capacity
        for k in 0..<(10 * start) { table[UInt64(k)] = entry(2 * k) }
        XCTAssertGreaterThanOrEqual(table.capacity, table.count)
        for k in 0..<(10 * start) { XCTAssertEqual(table[UInt64(k)]?.impressionTs, Int64(2 * k)) }
    }
}
