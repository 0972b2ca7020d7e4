import XCTest
@testable import FreshetCore

final class KeyIndexTests: XCTestCase {
    func testInsertLookupAcrossGrowth() {
        var index = KeyIndex()
        var next: UInt32 = 0
        // Mix small (inline) and large (heap) strings.
        let keys = (0..<50_000).map { $0 % 3 == 0 ? "a-long-identifier-beyond-fifteen-bytes-\($0)" : "k\($0)" }
        for key in keys {
            let s = index.slot(of: key) { defer { next += 1 }; return next }
            XCTAssertEqual(s, next - 1)
        }
        XCTAssertEqual(index.count, keys.count)
        for (k, key) in keys.enumerated() {
            XCTAssertEqual(index.slot(of: key), UInt32(k))
            XCTAssertEqual(index.slot(of: key) { XCTFail("re-inserted"); return 0 }, UInt32(k))
        }
        XCTAssertNil(index.slot(of: "missing"))
        XCTAssertNil(index.slot(of: ""))
        index.removeAll()
        XCTAssertNil(index.slot(of: "k1"))
    }

    func testInterner() {
        var interner = StringInterner()
        XCTAssertEqual(interner.intern("x"), 0)
        XCTAssertEqual(interner.intern("y"), 1)
        XCTAssertEqual(interner.intern("x"), 0)
        XCTAssertEqual(interner[1], "y")
        XCTAssertEqual(interner.index(of: "y"), 1)
        XCTAssertEqual(interner.count, 2)
    }

    func testForEachItemEventMatchesArrayRouting() {
        let imp = Impression(requestId: "r", userId: "u", itemsShown: ["a", "b", "c"], positions: nil, ts: 5)
        var seen: [(UInt16, ItemEvent)] = []
        ItemRouting.forEachItemEvent(for: imp) { seen.append(($0, $1)) }
        XCTAssertEqual(seen.map(\.0), [0, 1, 2])
        XCTAssertEqual(seen.map(\.1), ItemRouting.itemEvents(for: imp))
        XCTAssertEqual(seen[0].1.kind, .impression(position: nil))
    }
}
