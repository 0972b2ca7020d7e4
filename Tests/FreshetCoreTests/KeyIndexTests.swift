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

    /// The batch path (prefetching, then interning in order) gives every id
    /// the number one-by-one interning gives it: ids new and known, an id
    /// twice in one batch, batches that make the index grow midway.
    func testBatchInterningMatchesOneByOne() {
        var batched = StringInterner()
        var single = StringInterner()
        var random = SplitMix64(seed: 7)
        for round in 0..<300 {
            let ids = (0..<(1 + round % 12)).map { _ in "id-\(random.nextInt(400 + round * 3))" }
            var expected: [UInt32] = []
            for id in ids { expected.append(single.intern(id)) }
            let bytes = ids.map { Array($0.utf8) }
            let got: [UInt32] = withUnsafeTemporaryAllocation(of: UnsafeRawBufferPointer.self, capacity: ids.count) { views in
                var pointers: [UnsafeMutableRawBufferPointer] = []
                for (k, b) in bytes.enumerated() {
                    let p = UnsafeMutableRawBufferPointer.allocate(byteCount: b.count, alignment: 1)
                    p.copyBytes(from: b)
                    pointers.append(p)
                    views.initializeElement(at: k, to: UnsafeRawBufferPointer(p))
                }
                defer { pointers.forEach { $0.deallocate() } }
                var numbers = [UInt32](repeating: .max, count: ids.count)
                numbers.withUnsafeMutableBufferPointer { batched.intern(validUTF8: UnsafeBufferPointer(views), into: $0) }
                return numbers
            }
            XCTAssertEqual(got, expected, "round \(round): \(ids)")
        }
        XCTAssertEqual(batched.count, single.count)
        for k in 0..<single.count { XCTAssertEqual(batched[UInt32(k)], single[UInt32(k)]) }
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

/// `KeyIndex.remove`: after any mix of inserts and removals every live key
/// is found, every removed one is not, and the count is right, also when
/// tags crowd a few homes (long probe runs that wrap around the table's end).
final class KeyIndexRemovalTests: XCTestCase {
    func testRandomInsertsAndRemovalsMatchADictionary() {
        for (seed, homes) in [(1, UInt32.max), (2, 7), (3, 3), (4, 1)] as [(UInt64, UInt32)] {
            var random = SplitMix64(seed: seed)
            var index = KeyIndex()
            var keys: [String] = []          // by slot; "" = free
            var tags: [UInt32] = []
            var reference: [String: UInt32] = [:]
            // Tags of few distinct homes force collisions; the high bits keep them distinct.
            func tag(_ key: String) -> UInt32 {
                let t = KeyIndex.tag(key)
                return homes == .max ? t : (t & ~UInt32(0xFFFF)) | (t % homes) &* 0x1F
            }
            for step in 0..<4_000 {
                let key = "k\(random.next() % 300)"
                let t = tag(key)
                if let slot = reference[key], random.next() % 2 == 0 {
                    XCTAssertTrue(index.remove(tag: t, slot: slot), "seed \(seed) step \(step)")
                    reference[key] = nil
                    keys[Int(slot)] = ""
                } else if reference[key] == nil {
                    let next = UInt32(keys.count)
                    let slot = index.slot(tag: t, isKey: { keys[Int($0)] == key }, orInsert: { next })
                    XCTAssertEqual(slot, next)
                    keys.append(key)
                    tags.append(t)
                    reference[key] = slot
                }
                XCTAssertEqual(index.count, reference.count)
            }
            for slot in 0..<keys.count {
                let key = keys[slot].isEmpty ? nil : keys[slot]
                let probe = key ?? "absent-\(slot)"
                let found = index.slot(tag: key.map(tag) ?? tags[slot], isKey: { keys[Int($0)] == probe })
                XCTAssertEqual(found, key.map { _ in UInt32(slot) }, "seed \(seed) slot \(slot)")
            }
            for (key, slot) in reference {
                XCTAssertEqual(index.slot(tag: tag(key), isKey: { keys[Int($0)] == key }), slot)
            }
            XCTAssertFalse(index.remove(tag: tag("never"), slot: 999_999))
        }
    }
}
