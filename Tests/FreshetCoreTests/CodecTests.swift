import XCTest
@testable import FreshetCore

final class CodecTests: XCTestCase {
    func testPrimitivesRoundTrip() throws {
        var w = ByteWriter()
        let varints: [UInt64] = [0, 1, 127, 128, 300, .max]
        let zigzags: [Int64] = [0, -1, 1, .min, .max, -1_732_700_000_000]
        for v in varints { w.write(varint: v) }
        for v in zigzags { w.write(zigzag: v) }
        w.write(int64: -42)
        w.write(double: -0.125)
        w.write(string: "héllo😀")
        w.write(bytes: [1, 2, 3])
        var r = ByteReader(w.bytes)
        for v in varints { XCTAssertEqual(try r.readVarint("v"), v) }
        for v in zigzags { XCTAssertEqual(try r.readZigzag("z"), v) }
        XCTAssertEqual(try r.readInt64("i"), -42)
        XCTAssertEqual(try r.readDouble("d"), -0.125)
        XCTAssertEqual(try r.readString("s"), "héllo😀")
        XCTAssertEqual(Array(try r.readBytes("b")), [1, 2, 3])
        XCTAssertTrue(r.isAtEnd)
    }

    /// `RawByteCursor.write(raw:)` copies short ids with word loads and
    /// stores: every length (each branch and its edges) copies exactly the
    /// bytes, and nothing around them.
    func testCursorRawWritesCopyEveryLengthExactly() {
        for n in 0...40 {
            let source = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
            var out = [UInt8](repeating: 0xEE, count: n + 8)
            out.withUnsafeMutableBytes { buffer in
                var c = RawByteCursor(base: buffer.baseAddress! + 3, capacity: n + 2)
                c.write(byte: 0xAA)
                source.withUnsafeBytes { c.write(raw: $0) }
                c.write(byte: 0xBB)
                XCTAssertEqual(c.count, n + 2)
            }
            XCTAssertEqual(out, [0xEE, 0xEE, 0xEE, 0xAA] + source + [0xBB, 0xEE, 0xEE, 0xEE], "length \(n)")
        }
    }

    func testTruncationNamesTheField() {
        var w = ByteWriter()
        w.write(string: "abcdef")
        var r = ByteReader(w.bytes.dropLast(2))
        XCTAssertThrowsError(try r.readString("user_id")) { error in
            XCTAssertEqual(error as? CodecError, CodecError(.truncated, "user_id"))
        }
        var r2 = ByteReader([0xFF, 0xFF])
        XCTAssertThrowsError(try r2.readVarint("count"))
    }

    let origin = RecordOrigin(sourceTopic: 1, partition: 7, offset: 123_456_789, subIndex: 3)

    func roundTrip(_ rec: RepartitionRecord) throws {
        let bytes = rec.encoded()
        XCTAssertEqual(bytes.first, RepartitionRecord.formatVersion)
        XCTAssertEqual(try RepartitionRecord.decode(bytes), rec)
        let viaBuffer = try bytes.withUnsafeBytes { buf in try RepartitionRecord.decode(buf) }
        XCTAssertEqual(viaBuffer, rec)
    }

    /// The optional user-history extension of item events (embeddings):
    /// present, absent, and a record without it decodes with an empty history.
    func testItemEventUserHistoryRoundTrips() throws {
        let base = ItemEvent(itemId: "i9", userId: "u1", ts: 12, kind: .interaction(.click, dwellMs: nil), requestId: nil)
        var withHistory = base
        withHistory.userHistory = ["i3", "", "e\u{301}", String(repeating: "x", count: 300)]
        try roundTrip(.item(withHistory, origin: origin))
        let plain = RepartitionRecord.item(base, origin: origin).encoded()
        let extended = RepartitionRecord.item(withHistory, origin: origin).encoded()
        XCTAssertEqual(Array(extended.prefix(plain.count)), plain, "the extension only appends")
        guard case .item(let decoded, _) = try RepartitionRecord.decode(plain) else { return XCTFail("not an item event") }
        XCTAssertEqual(decoded.userHistory, [])
        var unknown = plain
        unknown.append(9)
        XCTAssertThrowsError(try RepartitionRecord.decode(unknown), "an unknown extension tag is refused")
    }

    func testRepartitionRecordsRoundTrip() throws {
        try roundTrip(.item(ItemEvent(itemId: "i9", userId: "u1", ts: 1_732_700_000_000,
                                      kind: .interaction(.watch, dwellMs: 4_500), requestId: "r7"), origin: origin))
        try roundTrip(.item(ItemEvent(itemId: "i9", userId: "u1", ts: -5, kind: .impression(position: nil)),
                            origin: origin))
        try roundTrip(.item(ItemEvent(itemId: "", userId: "ü", ts: 0, kind: .impression(position: -3), requestId: nil),
                            origin: origin))
        try roundTrip(.interaction(Interaction(userId: "u1", itemId: "i2", action: .skip, dwellMs: nil, ts: 7,
                                               requestId: nil), origin: origin))
        try roundTrip(.watermark(WatermarkMarker(sourceTopic: 0, sourcePartition: 11, watermarkMs: 1_000,
                                                 finished: true)))
        try roundTrip(.watermark(WatermarkMarker(sourceTopic: 1, sourcePartition: 0, watermarkMs: nil)))
        let long = String(repeating: "item-é😀-", count: 40) // heap string, multi-byte, > 127-byte length varint
        try roundTrip(.item(ItemEvent(itemId: long, userId: long + "u", ts: .min, kind: .interaction(.like, dwellMs: .max),
                                      requestId: long), origin: RecordOrigin(sourceTopic: 0, partition: .max,
                                                                             offset: .max, subIndex: .max)))
        try roundTrip(.interaction(Interaction(userId: long, itemId: "i", action: .click, dwellMs: 0, ts: .max,
                                               requestId: long), origin: origin))
        // Records append to what the writer already holds.
        var w = ByteWriter()
        w.write(byte: 0xAB)
        RepartitionRecord.watermark(WatermarkMarker(sourceTopic: 0, sourcePartition: -1, watermarkMs: -5)).encode(into: &w)
        XCTAssertEqual(w.bytes.first, 0xAB)
        XCTAssertEqual(try RepartitionRecord.decode(Array(w.bytes.dropFirst())),
                       .watermark(WatermarkMarker(sourceTopic: 0, sourcePartition: -1, watermarkMs: -5)))
    }

    /// The item event's wire bytes, written out by hand from the format
    /// (RepartitionRecord's doc): the encoder a source task writes through
    /// (`writeItem` into its own scratch space) and `.item(...).encoded()`
    /// must both produce exactly these.
    func testItemEventWireBytes() {
        let origin = RecordOrigin(sourceTopic: 0, partition: 3, offset: 5, subIndex: 2)
        let interaction = RepartitionRecord.item(ItemEvent(itemId: "i9", userId: "u1", ts: 1,
                                                           kind: .interaction(.watch, dwellMs: 4_500), requestId: "r7"),
                                                 origin: origin)
        let interactionBytes: [UInt8] = [1, 1, 2, 0x69, 0x39, 2, 0x75, 0x31, 2, // format, tag, "i9", "u1", ts 1
                                         1, 2, 1, 0xA8, 0x46,                  // interaction, watch, dwell 4500
                                         1, 2, 0x72, 0x37,                     // request id "r7"
                                         0, 6, 10, 2]                          // origin
        XCTAssertEqual(interaction.encoded(), interactionBytes)
        let impression = RepartitionRecord.item(ItemEvent(itemId: "i9", userId: "u1", ts: -1,
                                                          kind: .impression(position: nil)), origin: origin)
        let impressionBytes: [UInt8] = [1, 1, 2, 0x69, 0x39, 2, 0x75, 0x31, 1, 2, 0, 0, 0, 6, 10, 2]
        XCTAssertEqual(impression.encoded(), impressionBytes)

        let history: [UInt8] = [1, 2, 0x69, 0x34] // one item, "i4"
        for (kind, requestId, historyBytes, expected) in [
            (ItemEvent.Kind.interaction(.watch, dwellMs: 4_500), "r7", [UInt8](), interactionBytes),
            (.impression(position: nil), nil, [], impressionBytes),
            (.interaction(.watch, dwellMs: 4_500), "r7", history, interactionBytes + [1] + history),
        ] as [(ItemEvent.Kind, String?, [UInt8], [UInt8])] {
            let ts: Int64 = expected == impressionBytes ? -1 : 1
            let item = Array("i9".utf8), user = Array("u1".utf8), request = requestId.map { Array($0.utf8) }
            let written: [UInt8] = item.withUnsafeBytes { i in
                user.withUnsafeBytes { u in
                    func write(_ r: UnsafeRawBufferPointer?) -> [UInt8] {
                        let bound = RepartitionRecord.itemMaxBytes(itemId: i, userId: u, requestId: r,
                                                                   userHistoryEncoded: historyBytes)
                        return [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
                            var c = RawByteCursor(base: UnsafeMutableRawPointer(buffer.baseAddress!), capacity: bound)
                            RepartitionRecord.writeItem(itemId: i, userId: u, ts: ts, kind: kind, requestId: r,
                                                        origin: origin, userHistoryEncoded: historyBytes, into: &c)
                            count = c.count
                        }
                    }
                    if let request { return request.withUnsafeBytes { write($0) } }
                    return write(nil)
                }
            }
            XCTAssertEqual(written, expected)
        }
    }

    func testUnknownVersionIsRefused() {
        var bytes = RepartitionRecord.watermark(WatermarkMarker(sourceTopic: 0, sourcePartition: 1, watermarkMs: 5))
            .encoded()
        bytes[0] = 2
        XCTAssertThrowsError(try RepartitionRecord.decode(bytes)) { error in
            XCTAssertEqual((error as? CodecError)?.kind, .unknownVersion)
            XCTAssertTrue("\(error)".contains("format 2"))
        }
        XCTAssertThrowsError(try RepartitionRecord.decode([]))
        XCTAssertThrowsError(try RepartitionRecord.decode([1, 9])) { error in
            XCTAssertEqual((error as? CodecError)?.kind, .invalidTag)
        }
        var trailing = RepartitionRecord.watermark(WatermarkMarker(sourceTopic: 0, sourcePartition: 1, watermarkMs: 5))
            .encoded()
        trailing.append(0)
        XCTAssertThrowsError(try RepartitionRecord.decode(trailing))
    }

    func testItemRouting() {
        let i = Interaction(userId: "u", itemId: "i", action: .skip, dwellMs: 3, ts: 10, requestId: "r")
        XCTAssertEqual(ItemRouting.itemEvents(for: i),
                       [ItemEvent(itemId: "i", userId: "u", ts: 10, kind: .interaction(.skip, dwellMs: 3), requestId: "r")])
        let imp = Impression(requestId: nil, userId: "u", itemsShown: ["a", "b"], positions: [4, 5], ts: 20)
        XCTAssertEqual(ItemRouting.itemEvents(for: imp).map(\.kind), [.impression(position: 4), .impression(position: 5)])
        XCTAssertEqual(ItemRouting.itemEvents(for: imp).map(\.itemId), ["a", "b"])
    }

    func testActionNames() {
        for a in Action.allCases { XCTAssertEqual(Action(name: a.name), a) }
        XCTAssertFalse(Action.skip.isPositive)
        XCTAssertTrue(Action.share.isPositive)
        XCTAssertNil(Action(name: "buy"))
    }
}
