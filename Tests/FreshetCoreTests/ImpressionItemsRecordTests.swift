@testable import FreshetCore
import XCTest

/// `ImpressionItemsRecord`: one record standing for several shown items of
/// an impression must read back as exactly the item event records it replaces.
final class ImpressionItemsRecordTests: XCTestCase {
    typealias Shown = (id: String, position: Int32?, subIndex: UInt32)

    let source = RecordOrigin(sourceTopic: 1, partition: 3, offset: 1_234_567)

    /// The record of `items`, written as a source task writes it.
    func group(user: String = "user-7", ts: EventTimeMs = 1_732_700_000_123, request: String? = "req-42",
               count interactionCount: Int64? = nil, _ items: [Shown]) -> [UInt8] {
        let ids = items.map { Array($0.id.utf8) }
        return Array(user.utf8).withUnsafeBytes { u in
            withOptionalBytes(request) { r in
                let bound = ImpressionItemsRecord.maxBytes(userId: u, requestId: r, count: items.count,
                                                           itemIdBytes: ids.reduce(0) { $0 + $1.count })
                var out = [UInt8](repeating: 0, count: bound)
                let written = out.withUnsafeMutableBytes { raw -> Int in
                    var c = RawByteCursor(base: raw.baseAddress!, capacity: raw.count)
                    ImpressionItemsRecord.write(userId: u, ts: ts, requestId: r, source: source,
                                                interactionCount: interactionCount, count: items.count,
                                                item: { k in
                                                    let bytes = ids[k].withUnsafeBytes { $0 }
                                                    return (bytes, items[k].position, items[k].subIndex)
                                                }, into: &c)
                    return c.count
                }
                return Array(out[..<written])
            }
        }
    }

    func withOptionalBytes<R>(_ s: String?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        guard let s else { return body(nil) }
        return Array(s.utf8).withUnsafeBytes { body($0) }
    }

    /// The item event records the group stands for.
    func singles(user: String = "user-7", ts: EventTimeMs = 1_732_700_000_123, request: String? = "req-42",
                 count interactionCount: Int64? = nil, _ items: [Shown]) -> [RepartitionRecord] {
        items.map { item in
            var origin = source
            origin.subIndex = item.subIndex
            var event = ItemEvent(itemId: item.id, userId: user, ts: ts, kind: .impression(position: item.position),
                                  requestId: request)
            event.interactionCount = interactionCount
            return .item(event, origin: origin)
        }
    }

    func expand(_ bytes: [UInt8]) throws -> [RepartitionRecord] {
        var out: [RepartitionRecord] = []
        try bytes.withUnsafeBytes { raw throws in try RepartitionRecord.decodeEach(raw) { out.append($0) } }
        return out
    }

    /// The item events a group's in-place reading stands for
    /// (`ImpressionItemsRecord.withItems`, the item task's path with the
    /// examples on), built from its header and items; nil for another kind.
    func inPlace(_ bytes: [UInt8]) throws -> [RepartitionRecord]? {
        var out: [RepartitionRecord] = []
        let grouped = try bytes.withUnsafeBytes { raw throws in
            try ImpressionItemsRecord.withItems(of: raw) { group, items in
                for item in items {
                    var origin = group.source
                    origin.subIndex = item.subIndex
                    var event = ItemEvent(itemId: String(decoding: item.id, as: UTF8.self),
                                          userId: String(decoding: group.userId, as: UTF8.self), ts: group.ts,
                                          kind: .impression(position: item.position),
                                          requestId: group.requestId.map { String(decoding: $0, as: UTF8.self) })
                    event.interactionCount = group.interactionCount
                    out.append(.item(event, origin: origin))
                }
            }
        }
        return grouped ? out : nil
    }

    func views(_ bytes: [UInt8]) throws -> [(String, EventTimeMs, ItemEvent.Kind, RecordOrigin, Int)]? {
        var out: [(String, EventTimeMs, ItemEvent.Kind, RecordOrigin, Int)] = []
        let isItems = try bytes.withUnsafeBytes { raw throws in
            try RepartitionRecord.forEachItemView(raw) { v in
                out.append((String(decoding: v.itemId, as: UTF8.self), v.ts, v.kind, v.origin, v.userHistory.count))
            }
        }
        return isItems ? out : nil
    }

    let items: [Shown] = [("item-1", 0, 0), ("ünïcode-item", 3, 3), ("item-9", nil, 7)]

    func testAGroupDecodesToTheItemEventsItReplaces() throws {
        XCTAssertEqual(try expand(group(items)), singles(items))
        XCTAssertEqual(try expand(group(request: nil, items)), singles(request: nil, items))
        // Negative times and large sub-indices survive the varints.
        let odd: [Shown] = [("a", -5, 0), ("b", Int32.max, 70_000)]
        XCTAssertEqual(try expand(group(ts: -86_400_000, odd)), singles(ts: -86_400_000, odd))
        // Read in place, the same events.
        XCTAssertEqual(try inPlace(group(items)), singles(items))
        XCTAssertEqual(try inPlace(group(request: nil, items)), singles(request: nil, items))
        XCTAssertEqual(try inPlace(group(ts: -86_400_000, odd)), singles(ts: -86_400_000, odd))
    }

    func testViewsCarryTheSameFieldsAsTheSinglesViews() throws {
        let grouped = try XCTUnwrap(try views(group(items)))
        var expected: [(String, EventTimeMs, ItemEvent.Kind, RecordOrigin, Int)] = []
        for single in singles(items) {
            expected += try XCTUnwrap(try views(single.encoded()))
        }
        XCTAssertEqual(grouped.count, 3)
        for (g, e) in zip(grouped, expected) {
            XCTAssertEqual(g.0, e.0)
            XCTAssertEqual(g.1, e.1)
            XCTAssertEqual(g.2, e.2)
            XCTAssertEqual(g.3, e.3)
            XCTAssertEqual(g.4, 0, "impressions carry no user history")
        }
    }

    func testAGroupIsSmallerThanItsSingles() {
        let ten: [Shown] = (0..<10).map { ("item-\($0 * 7919)", Int32($0), UInt32($0)) }
        let singleBytes = singles(ten).reduce(0) { $0 + $1.encoded().count }
        XCTAssertLessThan(group(ten).count * 2, singleBytes, "the shared fields are written once")
    }

    func testOtherKindsAreNotItemBearing() throws {
        let marker = RepartitionRecord.watermark(WatermarkMarker(sourceTopic: 0, sourcePartition: 1, watermarkMs: 5, finished: false))
        XCTAssertNil(try views(marker.encoded()))
        XCTAssertEqual(try expand(marker.encoded()), [marker])
        XCTAssertNil(try inPlace(marker.encoded()))
        XCTAssertNil(try inPlace(singles(items)[0].encoded()), "a single item event is not a group")
    }

    func testSingleRecordDecodeRefusesAGroupClearly() {
        XCTAssertThrowsError(try RepartitionRecord.decode(group(items))) { error in
            XCTAssertEqual((error as? CodecError)?.kind, .invalidTag)
        }
    }

    /// A malformed group applies nothing: every way of breaking it throws
    /// before the first event reaches the caller.
    func testMalformedGroupsThrowBeforeAnyEventIsSeen() throws {
        let good = group(items)
        var cases: [(String, [UInt8])] = []
        for cut in [3, good.count / 2, good.count - 1] { cases.append(("truncated at \(cut)", Array(good[..<cut]))) }
        cases.append(("trailing byte", good + [0]))
        cases.append(("sub-indices not increasing", group([("a", nil, 4), ("b", nil, 4)])))
        var zeroCount = group([("a", nil, 0)])
        // The count varint (one byte here) ends the shared fields.
        let countIndex = try zeroCount.withUnsafeBytes { raw throws -> Int in
            var r = BorrowedByteReader(raw)
            r.position = 2
            _ = try ImpressionItemsRecord.readHeader(&r, counted: false)
            return r.position - 1
        }
        XCTAssertEqual(zeroCount[countIndex], 1)
        zeroCount[countIndex] = 0
        cases.append(("count 0", zeroCount))
        var hugeCount = group(items)
        hugeCount[countIndex] = 100
        cases.append(("count beyond the bytes", hugeCount))
        var badUTF8 = group([("ab", nil, 0), ("cd", nil, 1)])
        badUTF8[badUTF8.count - 3] = 0xFF // the second id's last byte
        cases.append(("invalid UTF-8 in the last id", badUTF8))
        for (name, bytes) in cases {
            var seen = 0
            XCTAssertThrowsError(try bytes.withUnsafeBytes { raw throws in
                _ = try RepartitionRecord.forEachItemView(raw) { _ in seen += 1 }
            }, name)
            XCTAssertEqual(seen, 0, "\(name): no event applied")
            var decoded = 0
            XCTAssertThrowsError(try bytes.withUnsafeBytes { raw throws in
                try RepartitionRecord.decodeEach(raw) { _ in decoded += 1 }
            }, name)
            XCTAssertEqual(decoded, 0, "\(name): no record decoded")
            var read = 0
            XCTAssertThrowsError(try bytes.withUnsafeBytes { raw throws in
                _ = try ImpressionItemsRecord.withItems(of: raw) { _, items in read += items.count }
            }, name)
            XCTAssertEqual(read, 0, "\(name): no item read in place")
        }
    }

    /// The counts stage's join copies (tag 5): the same items, each event
    /// carrying the user's count; views read them as tag 4's.
    func testCountedGroupsCarryTheCountToEveryEvent() throws {
        for count in [0, 7, -1, Int64.max] as [Int64] {
            let bytes = group(count: count, items)
            XCTAssertEqual(bytes[1], 5)
            XCTAssertEqual(try expand(bytes), singles(count: count, items))
            XCTAssertEqual(try inPlace(bytes), singles(count: count, items))
            XCTAssertEqual(try expand(bytes).map { record -> Int64? in
                guard case .item(let event, _) = record else { return nil }
                return event.interactionCount
            }, Array(repeating: count, count: items.count))
            let counted = try XCTUnwrap(try views(bytes)), plain = try XCTUnwrap(try views(group(items)))
            XCTAssertEqual(counted.map(\.0), plain.map(\.0))
            XCTAssertEqual(counted.map(\.3), plain.map(\.3))
            XCTAssertThrowsError(try bytes.withUnsafeBytes { raw throws in _ = try RepartitionRecord.decode(raw) },
                                 "a group is read with decodeEach")
        }
        XCTAssertEqual(group(items)[1], 4, "a source's group carries no count")
        // Cut inside the count: nothing is applied.
        let bytes = group(count: Int64.max, items)
        let headerEnd = try bytes.withUnsafeBytes { raw throws -> Int in
            var r = BorrowedByteReader(raw)
            r.position = 2
            _ = try ImpressionItemsRecord.readHeader(&r, counted: true)
            return r.position
        }
        var seen = 0
        XCTAssertThrowsError(try Array(bytes[..<(headerEnd - 3)]).withUnsafeBytes { raw throws in
            try RepartitionRecord.decodeEach(raw) { _ in seen += 1 }
        })
        XCTAssertEqual(seen, 0)
    }
}
