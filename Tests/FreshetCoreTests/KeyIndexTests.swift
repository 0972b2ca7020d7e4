import XCTest
@testable import FreshetCore

final class KeyIndexTests: XCTestCase {
    func testInsertLookupAcrossGrowth() {
        var index = KeyIndex()
        var stored: [String] = []
        // Mix small (inline) and large (heap) strings.
        let keys = (0..<50_000).map { $0 % 3 == 0 ? "a-long-identifier-beyond-fifteen-bytes-\($0)" : "k\($0)" }
        for key in keys {
            let next = UInt32(stored.count)
            let s = index.slot(tag: KeyIndex.tag(key), isKey: { stored[Int($0)] == key }, orInsert: { next })
            XCTAssertEqual(s, next)
            stored.append(key)
        }
        XCTAssertEqual(index.count, keys.count)
        for (k, key) in keys.enumerated() {
            XCTAssertEqual(index.slot(tag: KeyIndex.tag(key)) { stored[Int($0)] == key }, UInt32(k))
            let again = index.slot(tag: KeyIndex.tag(key), isKey: { stored[Int($0)] == key },
                                   orInsert: { XCTFail("re-inserted"); return 0 })
            XCTAssertEqual(again, UInt32(k))
        }
        XCTAssertNil(index.slot(tag: KeyIndex.tag("missing")) { stored[Int($0)] == "missing" })
        // Same tag, different key: the comparison decides.
        XCTAssertNil(index.slot(tag: KeyIndex.tag("k1")) { _ in false })
        index.removeAll()
        XCTAssertNil(index.slot(tag: KeyIndex.tag("k1")) { stored[Int($0)] == "k1" })
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
        var seen: [(UInt32, ItemEvent)] = []
        ItemRouting.forEachItemEvent(for: imp) { seen.append(($0, $1)) }
        XCTAssertEqual(seen.map(\.0), [0, 1, 2])
        XCTAssertEqual(seen.map(\.1), ItemRouting.itemEvents(for: imp))
        XCTAssertEqual(seen[0].1.kind, .impression(position: nil))
    }
}
