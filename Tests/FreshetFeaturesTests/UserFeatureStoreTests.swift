import XCTest
import FreshetCore
@testable import FreshetFeatures

final class UserFeatureStoreTests: XCTestCase {
    func click(_ user: String, _ item: String, _ ts: EventTimeMs, _ action: Action = .click) -> Interaction {
        Interaction(userId: user, itemId: item, action: action, ts: ts)
    }

    func testOrderingDedupAndCount() {
        let s = UserFeatureStore()
        s.apply(click("u", "a", 100))
        s.apply(click("u", "b", 200))
        s.apply(click("u", "a", 300)) // a moves to the front
        s.apply(click("u", "c", 250, .watch))
        XCTAssertEqual(s.features(of: "u"), UserFeatures(recentItems: ["a", "c", "b"], interactionCount: 4, updatedMs: 300))
    }

    func testSkipIsIgnored() {
        let s = UserFeatureStore()
        s.apply(click("u", "a", 100, .skip))
        XCTAssertNil(s.features(of: "u"))
        XCTAssertEqual(s.count, 0)
        s.apply(click("u", "a", 100))
        s.apply(click("u", "b", 500, .skip))
        XCTAssertEqual(s.features(of: "u"), UserFeatures(recentItems: ["a"], interactionCount: 1, updatedMs: 100))
    }

    func testLateEvents() {
        let s = UserFeatureStore()
        s.apply(click("u", "a", 1_000))
        s.apply(click("u", "b", 2_000))
        s.apply(click("u", "b", 500)) // older event for a listed item: no change to order
        XCTAssertEqual(s.features(of: "u")?.recentItems, ["b", "a"])
        s.apply(click("u", "c", 1_500)) // late new item is inserted at its time
        XCTAssertEqual(s.features(of: "u")?.recentItems, ["b", "c", "a"])
        // Late events still count and never lower updated_ms.
        XCTAssertEqual(s.features(of: "u")?.interactionCount, 4)
        XCTAssertEqual(s.features(of: "u")?.updatedMs, 2_000)
    }

    func testTiesPutGreaterIdFirst() {
        let s = UserFeatureStore()
        s.apply(click("u", "i10", 100))
        s.apply(click("u", "i9", 100))
        s.apply(click("u", "i2", 100))
        XCTAssertEqual(s.features(of: "u")?.recentItems, ["i9", "i2", "i10"])
    }

    func testCapacityIsExact() {
        let s = UserFeatureStore(recentCapacity: 50)
        for k in 0..<60 { s.apply(click("u", "i\(k)", EventTimeMs(1_000 + k))) }
        let expected = (10..<60).reversed().map { "i\($0)" }
        XCTAssertEqual(s.features(of: "u")?.recentItems, expected)
        // Older than everything listed while full: nothing changes.
        s.apply(click("u", "old", 5))
        XCTAssertEqual(s.features(of: "u")?.recentItems, expected)
        // An evicted item coming back with an older time than the last entry stays out.
        s.apply(click("u", "i3", 1_009))
        XCTAssertEqual(s.features(of: "u")?.recentItems, expected)
        // A late new item inside the range pushes the 51st out.
        s.apply(click("u", "late", 1_030))
        let f = s.features(of: "u")!.recentItems
        XCTAssertEqual(f.count, 50)
        XCTAssertEqual(f[29], "late")
        XCTAssertEqual(f.last, "i11")
        XCTAssertEqual(s.features(of: "u")?.interactionCount, 63)
    }

    func testMatchesBruteForceReference() {
        // Reference: keep every item's latest time, sort, take 5.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let s = UserFeatureStore(recentCapacity: 5)
            var latest: [String: EventTimeMs] = [:]
            for _ in 0..<200 {
                let item = "i\(Int.random(in: 0..<15, using: &rng))"
                let ts = EventTimeMs.random(in: 0..<50, using: &rng)
                s.apply(click("u", item, ts))
                latest[item] = max(latest[item] ?? .min, ts)
            }
            let ref = latest.sorted { ($0.value, $0.key) > ($1.value, $1.key) }.prefix(5).map(\.key)
            XCTAssertEqual(s.features(of: "u")?.recentItems, Array(ref))
        }
    }

    func testDirtySetsAreIndependent() {
        let s = UserFeatureStore()
        s.apply(click("u1", "a", 1))
        s.apply(click("u2", "a", 1))
        s.apply(click("u1", "b", 2))
        XCTAssertEqual(s.takeDirty(), ["u1", "u2"])
        XCTAssertEqual(s.takeDirty(), [])
        s.apply(click("u2", "c", 3))
        XCTAssertEqual(s.takeDirty(), ["u2"])
        XCTAssertEqual(s.takeChangedForCheckpoint(), ["u1", "u2"])
        XCTAssertEqual(s.takeChangedForCheckpoint(), [])
    }

    func testCheckpointRoundTrip() throws {
        let s = UserFeatureStore()
        for k in 0..<70 { s.apply(click("u\(k % 3)", "item-\(k % 40)", EventTimeMs(k * 7 % 50))) }
        let restored = UserFeatureStore()
        for u in ["u0", "u1", "u2"] {
            let bytes = try XCTUnwrap(s.encodeEntry(u))
            try restored.restoreEntry(userId: u, bytes: bytes)
            XCTAssertEqual(restored.features(of: u), s.features(of: u))
        }
        XCTAssertNil(s.encodeEntry("nobody"))
        XCTAssertEqual(restored.takeDirty(), [])
        // Restored state keeps evolving identically.
        s.apply(click("u1", "item-3", 1_000))
        restored.apply(click("u1", "item-3", 1_000))
        XCTAssertEqual(restored.features(of: "u1"), s.features(of: "u1"))
        var bad = s.encodeEntry("u0")!
        bad[0] = 9
        XCTAssertThrowsError(try restored.restoreEntry(userId: "u0", bytes: bad))
        XCTAssertThrowsError(try restored.restoreEntry(userId: "u0", bytes: s.encodeEntry("u0")!.dropLast()))
        XCTAssertThrowsError(try restored.restoreEntry(userId: "u0", bytes: s.encodeEntry("u0")! + [0]))
        // A recent item's id that is not UTF-8 (the last byte of the first
        // id, "item-…", made 0xFF) is refused, not interned.
        var notUTF8 = s.encodeEntry("u0")!
        let firstIdEnd = try XCTUnwrap(notUTF8.firstIndex(of: UInt8(ascii: "-"))) + 1
        notUTF8[firstIdEnd] = 0xFF
        let before = restored.features(of: "u0")
        XCTAssertThrowsError(try restored.restoreEntry(userId: "u0", bytes: notUTF8)) { error in
            XCTAssertEqual((error as? CodecError)?.kind, .invalidUTF8)
        }
        XCTAssertEqual(restored.features(of: "u0"), before, "a refused entry leaves the user as it was")
        restored.removeAll()
        XCTAssertEqual(restored.count, 0)
    }

    /// The flush's rendering copies short ids as 16-byte blocks: ids of every
    /// length around that size, and the last interned ids (which end at the
    /// end of the names' buffer, where a 16-byte read would run past it),
    /// must come out exactly as the reference rendering.
    func testRenderedListsCopyIdsOfEveryLengthExactly() {
        let store = UserFeatureStore()
        let ids = (1...40).map { String((String($0) + String(repeating: "x", count: 40)).prefix($0)) }
        for (k, id) in ids.enumerated() {
            store.apply(Interaction(userId: "forward", itemId: id, action: .click, ts: 1_000 + Int64(k)))
            store.apply(Interaction(userId: "backward", itemId: ids[ids.count - 1 - k], action: .click, ts: 1_000 + Int64(k)))
        }
        store.apply(Interaction(userId: "last", itemId: ids[39], action: .click, ts: 5_000))
        store.apply(Interaction(userId: "last", itemId: ids[38], action: .click, ts: 5_001))
        var rendered: [String: String] = [:]
        store.takeDirtyRendered { user, json, _, _ in rendered[user] = String(decoding: json, as: UTF8.self) }
        XCTAssertEqual(rendered.count, 3)
        for user in ["forward", "backward", "last"] {
            let expected = UserFeatureStore.renderRecentItemsJSON(store.features(of: user)!.recentItems)
            XCTAssertEqual(rendered[user], expected, user)
        }
        XCTAssertEqual(rendered["last"], "[\"\(ids[38])\",\"\(ids[39])\"]")
    }

    func testRecentItemsJSON() {
        XCTAssertEqual(UserFeatureStore.renderRecentItemsJSON([]), "[]")
        XCTAssertEqual(UserFeatureStore.renderRecentItemsJSON(["42", "a\"b", "c\\d", "e\nf\u{01}", "é"]),
                       #"["42","a\"b","c\\d","e\nf\u0001","é"]"#)
    }
}
