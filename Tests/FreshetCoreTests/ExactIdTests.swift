import XCTest
@testable import FreshetCore

/// Ids are byte strings: canonically equivalent but byte-different ids are
/// different keys everywhere ids are hashed, compared or ordered.
final class ExactIdTests: XCTestCase {
    let composed = "caf\u{E9}"
    let decomposed = "cafe\u{301}"

    func testSwiftConflatesTheTwoFormsButIdBytesDoesNot() {
        XCTAssertEqual(composed, decomposed)
        XCTAssertFalse(IdBytes.equal(composed, decomposed))
        XCTAssertTrue(IdBytes.equal(composed, "caf" + "\u{E9}"))
        XCTAssertNotEqual(ExactId(composed), ExactId(decomposed))
        XCTAssertEqual(Set([ExactId(composed), ExactId(decomposed), ExactId(composed)]).count, 2)
        // Byte order: 'e' (0x65) < 0xC3, so the decomposed form sorts first.
        XCTAssertTrue(IdBytes.less(decomposed, composed))
        XCTAssertFalse(IdBytes.less(composed, decomposed))
    }

    /// `equal(bytes:_:)` settles short runs with a few loads instead of
    /// `memcmp`: every length up to 40, a difference at every position.
    func testByteRunsDifferingAtAnyPositionAreUnequal() {
        for n in 0...40 {
            let a: [UInt8] = (0..<n).map { UInt8(truncatingIfNeeded: 0x61 &+ $0) }
            a.withUnsafeBytes { x in
                let same = a
                same.withUnsafeBytes { XCTAssertTrue(IdBytes.equal(bytes: x, $0), "length \(n)") }
                for k in 0..<n {
                    var b = a
                    b[k] ^= 0x01
                    b.withUnsafeBytes { XCTAssertFalse(IdBytes.equal(bytes: x, $0), "length \(n), byte \(k)") }
                }
                let longer = a + [0x61]
                longer.withUnsafeBytes { XCTAssertFalse(IdBytes.equal(bytes: x, $0), "length \(n) vs \(n + 1)") }
            }
        }
        for (a, b) in [("i7", "i8"), ("i17", "i27"), ("7", "8"), ("i7", "j7")] {
            XCTAssertFalse(IdBytes.equal(a, b), "\(a) vs \(b)")
            XCTAssertTrue(IdBytes.equal(a, a))
        }
    }

    func testInternerKeepsBothForms() {
        var interner = StringInterner()
        let a = interner.intern(composed)
        let b = interner.intern(decomposed)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(interner.count, 2)
        XCTAssertEqual(interner.intern(composed), a)
        XCTAssertEqual(interner.index(of: decomposed), b)
        XCTAssertEqual(Array(interner[b].utf8), Array(decomposed.utf8))
    }

    func testKeyIndexTagsHashBytes() {
        var index = KeyIndex()
        var stored: [String] = []
        for key in [composed, decomposed, "x", "\u{212B}", "\u{C5}"] { // Angstrom sign vs Latin A with ring
            let next = UInt32(stored.count)
            let slot = index.slot(tag: KeyIndex.tag(key), isKey: { IdBytes.equal(stored[Int($0)], key) }, orInsert: { next })
            XCTAssertEqual(slot, next, "\(Array(key.utf8)) is a new key")
            stored.append(key)
        }
        XCTAssertEqual(index.count, 5)
    }

    func testIdMapAndIdSet() {
        var map: IdMap<Int> = [:]
        map[composed, default: 0] += 1
        map[decomposed, default: 0] += 1
        map[composed, default: 0] += 1
        XCTAssertEqual(map.count, 2)
        XCTAssertEqual(map[composed], 2)
        XCTAssertEqual(map[decomposed], 1)
        XCTAssertEqual(map.filter { $0.value > 1 }.keys.map { Array($0.utf8) }, [Array(composed.utf8)])
        map.removeValue(forKey: composed)
        XCTAssertNil(map[composed])
        XCTAssertEqual(map[decomposed], 1)
        var set: IdSet = []
        XCTAssertTrue(set.insert(composed))
        XCTAssertTrue(set.insert(decomposed))
        XCTAssertFalse(set.insert(composed))
        XCTAssertEqual(set.count, 2)
    }

    /// Item events get 32-bit sub-indices: a list longer than 65,535 items
    /// keeps distinct, increasing positions.
    func testSubIndicesPastSixteenBits() throws {
        let items = (0..<70_000).map { "i\($0)" }
        let impression = Impression(requestId: nil, userId: "u", itemsShown: items, positions: nil, ts: 1)
        var last: UInt32?
        var count = 0
        ItemRouting.forEachItemEvent(for: impression) { sub, _ in
            if let last { XCTAssertEqual(sub, last + 1) }
            last = sub
            count += 1
        }
        XCTAssertEqual(count, 70_000)
        XCTAssertEqual(last, 69_999)
        let origin = RecordOrigin(sourceTopic: 1, partition: 0, offset: 5, subIndex: 69_999)
        let event = ItemEvent(itemId: "i69999", userId: "u", ts: 1, kind: .impression(position: nil), requestId: nil)
        XCTAssertEqual(try RepartitionRecord.decode(RepartitionRecord.item(event, origin: origin).encoded()),
                       .item(event, origin: origin))
    }
}

/// The replay tool's reading of a record is the decoder's (issue 8, part 5).
final class EventRoutingTests: XCTestCase {
    let decoder = EventDecoder()

    func testEscapedAndDuplicateUserIdsReadAsTheDecoderReadsThem() throws {
        let lines = [
            #"{"user_id":"u\u0031","item_id":"i","action":"click","ts":1732700000000}"#,
            #"{"user_id":"first","item_id":"i","user_id":"last","action":"click","ts":1732700000000}"#,
            #"{"user\u005fid":"escaped-key","item_id":"i","action":"click","ts":1732700000000}"#,
            #"{"user_id":42,"item_id":"i","action":"click","ts":1732700000000}"#,
        ]
        for line in lines {
            let routing = try XCTUnwrap(EventDecoder.routing(Array(line.utf8)), line)
            let decoded = try decoder.decodeInteraction(Array(line.utf8), messageTimestampMs: nil, nowMs: 1732700000000)
            XCTAssertEqual(routing.userId, decoded.userId, line)
            XCTAssertFalse(routing.isImpression)
        }
        XCTAssertEqual(EventDecoder.routing(Array(lines[1].utf8))?.userId, "last", "the last of duplicate keys")
        let impression = #"{"user_id":"u","items_shown":["a"],"ts":1}"#
        XCTAssertEqual(EventDecoder.routing(Array(impression.utf8)), EventRouting(userId: "u", isImpression: true))
        XCTAssertNil(EventDecoder.routing(Array("not json".utf8)))
        XCTAssertEqual(EventDecoder.routing(Array(#"{"user_id":true}"#.utf8))?.userId, nil)
    }
}

/// Valid JSON nested deeply in an unknown field: accepted up to the limit,
/// then its own reason (not `malformed_json`).
final class NestingLimitTests: XCTestCase {
    func event(extraDepth: Int) -> [UInt8] {
        Array(#"{"user_id":"u","item_id":"i","action":"click","ts":1732700000000,"extra":"#.utf8)
            + Array(repeating: UInt8(ascii: "["), count: extraDepth) + Array(repeating: UInt8(ascii: "]"), count: extraDepth)
            + [UInt8(ascii: "}")]
    }

    func testDepthLimit() throws {
        let decoder = EventDecoder()
        for depth in [1, 300, EventDecoder.maxNestingDepth - 1] {
            XCTAssertNoThrow(try decoder.decodeInteraction(event(extraDepth: depth), messageTimestampMs: nil, nowMs: 1732700000000),
                             "depth \(depth) + the event object")
        }
        XCTAssertThrowsError(try decoder.decodeInteraction(event(extraDepth: EventDecoder.maxNestingDepth), messageTimestampMs: nil,
                                                           nowMs: 1732700000000)) { error in
            XCTAssertEqual((error as? BadInput)?.reason, .nestingTooDeep)
        }
        // Mixed objects and arrays, still accepted, and syntax errors inside still malformed.
        let mixed = Array(#"{"user_id":"u","item_id":"i","action":"click","ts":1732700000000,"x":{"a":[{"b":[1,2,{"c":null}]},true],"d":"e"}}"#.utf8)
        XCTAssertNoThrow(try decoder.decodeInteraction(mixed, messageTimestampMs: nil, nowMs: 1732700000000))
        let broken = Array(#"{"user_id":"u","item_id":"i","action":"click","ts":1732700000000,"x":{"a":[1,}]}}"#.utf8)
        XCTAssertThrowsError(try decoder.decodeInteraction(broken, messageTimestampMs: nil, nowMs: 1732700000000)) { error in
            XCTAssertEqual((error as? BadInput)?.reason, .malformedJSON)
        }
    }
}
