import FreshetCore
@testable import FreshetEmbeddings
import XCTest

/// The joiner's id table: one live slot per id (by bytes), freed at its
/// last release and reused, whatever the order of retains and releases.
final class CountedInternerTests: XCTestCase {
    func testOneSlotPerLiveIdFreedAtTheLastRelease() {
        let ids = CountedInterner()
        let a = ids.retain("a")
        XCTAssertEqual(ids.retain("a"), a, "the same id again")
        let b = ids.retain("b")
        XCTAssertEqual(ids.retain("a"), a, "the same id after another")
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(ids.liveCount, 2)
        ids.release(a); ids.release(a)
        XCTAssertEqual(ids.slot(of: "a"), a, "one reference left")
        ids.release(a)
        XCTAssertNil(ids.slot(of: "a"))
        XCTAssertEqual(ids.liveCount, 1)
        // The freed slot goes to the next new id; "a" is not found through it.
        let c = ids.retain("c")
        XCTAssertEqual(c, a)
        XCTAssertNil(ids.slot(of: "a"))
        let a2 = ids.retain("a")
        XCTAssertNotEqual(a2, c)
        XCTAssertEqual(ids[a2], "a")
        XCTAssertEqual(ids[c], "c")
        // Canonically equivalent ids are different ids.
        let composed = ids.retain("caf\u{E9}"), decomposed = ids.retain("cafe\u{301}")
        XCTAssertNotEqual(composed, decomposed)
        XCTAssertEqual(ids.liveCount, 5)
    }

    /// Against a reference count per id, over random retains and releases.
    func testRandomRetainsAndReleasesMatchAReferenceCount() {
        var random = SplitMix64(seed: 5)
        let ids = CountedInterner()
        var refs: [String: (slot: UInt32, count: Int)] = [:]
        for _ in 0..<20_000 {
            let id = "id-\(random.next() % 50)"
            if let held = refs[id], random.next() % 2 == 0 {
                ids.release(held.slot)
                refs[id] = held.count > 1 ? (held.slot, held.count - 1) : nil
            } else {
                let slot = ids.retain(id)
                if let held = refs[id] { XCTAssertEqual(slot, held.slot) }
                refs[id] = (slot, (refs[id]?.count ?? 0) + 1)
            }
            XCTAssertEqual(ids.liveCount, refs.count)
        }
        for (id, held) in refs { XCTAssertEqual(ids.slot(of: id), held.slot) }
    }
}
