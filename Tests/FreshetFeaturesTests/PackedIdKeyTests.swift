import XCTest
import FreshetCore
@testable import FreshetFeatures

final class PackedIdKeyTests: XCTestCase {
    static func key(_ bytes: [UInt8]) -> PackedIdKey {
        bytes.withUnsafeBytes { PackedIdKey($0) }
    }

    /// Two ids of at most 16 bytes have equal keys exactly when their bytes
    /// are equal: every length 0-16 against each one-byte change (at every
    /// position, to a byte below, above, and NUL) and against every other
    /// length of the same filler (NUL padding included).
    func testKeysOfShortIdsAreEqualExactlyWhenTheBytesAre() {
        var checked = 0
        for n in 0...20 {
            let id = (0..<n).map { UInt8(0x41 + $0) }
            XCTAssertEqual(Self.key(id), Self.key(id))
            XCTAssertEqual(Self.key(id).isWhole, n <= 16)
            for at in 0..<n {
                for replacement: UInt8 in [0, id[at] &- 1, id[at] &+ 1, 0xFF] {
                    var changed = id
                    changed[at] = replacement
                    if n <= 16 { XCTAssertNotEqual(Self.key(changed), Self.key(id), "\(n) bytes, byte \(at)") }
                    checked += 1
                }
            }
            for m in 0...20 where m != n {
                XCTAssertNotEqual(Self.key(id), Self.key((0..<m).map { UInt8(0x41 + $0) }))
                if m > n { XCTAssertNotEqual(Self.key(id), Self.key(id + Array(repeating: 0, count: m - n))) }
            }
        }
        XCTAssertGreaterThan(checked, 500)
    }

    /// The store finds an item given as bytes (packed keys) in the slot the
    /// same id given as a `String` has, for ids of every length around the
    /// 16-byte limit that differ in one byte.
    func testTheStoreFindsTheSameSlotFromBytesAndFromStrings() {
        let store = ItemFeatureStore()
        var ids: [String] = []
        for n in 1...24 {
            let base = String(repeating: "i", count: n)
            ids.append(base)
            for at in 0..<n {
                var bytes = Array(base.utf8)
                bytes[at] = UInt8(ascii: "j")
                ids.append(String(decoding: bytes, as: UTF8.self))
            }
        }
        // Half made from bytes, half from strings, then each looked up the other way.
        for (k, id) in ids.enumerated() {
            if k % 2 == 0 {
                var copy = id
                _ = copy.withUTF8 { store.slot(forValidUTF8: UnsafeRawBufferPointer($0)) }
            } else {
                _ = store.slot(for: id)
            }
        }
        XCTAssertEqual(store.count, ids.count)
        for id in ids {
            var copy = id
            let fromBytes = copy.withUTF8 { store.slot(forValidUTF8: UnsafeRawBufferPointer($0)) }
            XCTAssertEqual(fromBytes, store.lookup(id), id)
            XCTAssertEqual(store.itemId(ofSlot: fromBytes), id)
        }
        XCTAssertEqual(store.count, ids.count)
    }
}
