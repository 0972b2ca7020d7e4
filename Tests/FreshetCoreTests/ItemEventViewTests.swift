import XCTest
@testable import FreshetCore

/// The in-place reader of item events (the item stage's fast path) must agree
/// with the full decoder on every record: same fields, same acceptance.
final class ItemEventViewTests: XCTestCase {
    let origin = RecordOrigin(sourceTopic: 1, partition: 3, offset: 99, subIndex: 4)

    private func view(_ bytes: [UInt8]) throws -> (itemId: [UInt8], ts: Int64, kind: ItemEvent.Kind, origin: RecordOrigin)? {
        try bytes.withUnsafeBytes { buf in
            try RepartitionRecord.itemView(buf).map { (Array($0.itemId), $0.ts, $0.kind, $0.origin) }
        }
    }

    func testViewAgreesWithDecode() throws {
        let long = String(repeating: "item-é😀-", count: 40)
        var withHistory = ItemEvent(itemId: "i9", userId: "u1", ts: 12, kind: .interaction(.click, dwellMs: 3))
        withHistory.userHistory = ["i3", "", "e\u{301}", long]
        let events = [
            withHistory,
            ItemEvent(itemId: "caf\u{E9}", userId: "u", ts: -5, kind: .impression(position: nil), requestId: "r"),
            ItemEvent(itemId: "cafe\u{301}", userId: long, ts: .max, kind: .impression(position: -3), requestId: long),
            ItemEvent(itemId: "", userId: "ü", ts: .min, kind: .interaction(.skip, dwellMs: nil)),
        ]
        for event in events {
            let bytes = RepartitionRecord.item(event, origin: origin).encoded()
            guard case .item(let decoded, let decodedOrigin) = try RepartitionRecord.decode(bytes) else {
                return XCTFail("not an item event")
            }
            let v = try XCTUnwrap(try view(bytes))
            XCTAssertEqual(v.itemId, Array(decoded.itemId.utf8), "item id bytes kept exactly")
            XCTAssertEqual(v.ts, decoded.ts)
            XCTAssertEqual(v.kind, decoded.kind)
            XCTAssertEqual(v.origin, decodedOrigin)
        }
    }

    func testOtherRecordsAreNotItemViews() throws {
        let marker = RepartitionRecord.watermark(WatermarkMarker(sourceTopic: 0, sourcePartition: 1, watermarkMs: 5))
        XCTAssertNil(try view(marker.encoded()))
        let interaction = RepartitionRecord.interaction(
            Interaction(userId: "u", itemId: "i", action: .like, dwellMs: nil, ts: 1, requestId: nil), origin: origin)
        XCTAssertNil(try view(interaction.encoded()))
    }

    func testViewRejectsWhatDecodeRejects() throws {
        var event = ItemEvent(itemId: "ab", userId: "cd", ts: 1, kind: .impression(position: 2), requestId: "ef")
        event.userHistory = ["gh"]
        let good = RepartitionRecord.item(event, origin: origin).encoded()
        // Every truncation, every single-byte corruption into invalid UTF-8 or a bad tag.
        var variants: [[UInt8]] = (0..<good.count).map { Array(good.prefix($0)) }
        for i in 2..<good.count {
            for replacement: UInt8 in [0xFF, 0xC0, 0x80, 9] {
                var bad = good
                bad[i] = replacement
                variants.append(bad)
            }
        }
        variants.append(good + [0])
        for bytes in variants {
            let decodeError = Result { try RepartitionRecord.decode(bytes) }.failure
            let viewError = Result { try view(bytes) }.failure
            XCTAssertEqual(decodeError == nil, viewError == nil, "\(bytes): decode \(String(describing: decodeError)), view \(String(describing: viewError))")
        }
    }

    func testTagsOfStringsAndBytesAgree() {
        for id in ["", "i1", "caf\u{E9}", "cafe\u{301}", String(repeating: "é", count: 100)] {
            let fromBytes = Array(id.utf8).withUnsafeBytes { KeyIndex.tag(bytes: $0) }
            XCTAssertEqual(KeyIndex.tag(id), fromBytes)
            XCTAssertTrue(Array(id.utf8).withUnsafeBytes { IdBytes.equal(id, bytes: $0) })
        }
        XCTAssertFalse(Array("cafe\u{301}".utf8).withUnsafeBytes { IdBytes.equal("caf\u{E9}", bytes: $0) })
    }
}

private extension Result {
    var failure: Failure? {
        if case .failure(let e) = self { return e }
        return nil
    }
}

extension ItemEventViewTests {
    /// The co-occurrence rows read a positive's history from the view when
    /// examples are off: it must be the decoder's history, item for item.
    func testViewCarriesTheEncodedHistory() throws {
        for history in [[], ["i9"], ["caf\u{E9}", "cafe\u{301}", "", String(repeating: "x", count: 300)]] {
            var event = ItemEvent(itemId: "i1", userId: "u1", ts: 5, kind: .interaction(.click, dwellMs: nil))
            event.userHistory = history
            let bytes = RepartitionRecord.item(event, origin: origin).encoded()
            var fromView: [[UInt8]] = []
            try bytes.withUnsafeBytes { raw in
                let view = try XCTUnwrap(try RepartitionRecord.itemView(raw))
                ItemEvent.forEachHistoryItem(inEncoded: view.userHistory) { fromView.append(Array($0)) }
            }
            guard case .item(let decoded, _) = try RepartitionRecord.decode(bytes) else { return XCTFail("not an item event") }
            var fromDecode: [[UInt8]] = []
            decoded.forEachUserHistoryItem { fromDecode.append(Array($0)) }
            XCTAssertEqual(fromView, history.map { Array($0.utf8) })
            XCTAssertEqual(fromView, fromDecode)
        }
    }
}
