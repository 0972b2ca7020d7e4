import FreshetCore
@testable import FreshetRuntime
import XCTest

/// The counts stage's wire formats: its input records, and the item event's
/// count extension (which the in-place reader of the features path skips).
final class CountStageRecordTests: XCTestCase {
    func roundTrip(_ record: CountStageRecord) throws -> CountStageRecord {
        let bytes = record.encoded()
        return try bytes.withUnsafeBytes { raw throws(CodecError) in try CountStageRecord.decode(raw) }
    }

    func testInteractionImpressionAndMarkerRoundTrip() throws {
        let origin = RecordOrigin(sourceTopic: 0, partition: 3, offset: 1_234_567, subIndex: 0)
        let click = Interaction(userId: "ü1", itemId: "i9", action: .click, dwellMs: 4_500, ts: 1_767_225_600_123, requestId: "r7")
        let skip = Interaction(userId: "u1", itemId: "i8", action: .skip, ts: 1_767_225_600_000)
        let shown = Impression(requestId: nil, userId: "u1", itemsShown: ["a", "b", "a"], positions: [0, 1, 2], ts: 1_767_225_601_000)
        let bare = Impression(userId: "u2", itemsShown: ["c"], ts: 1_767_225_602_000)
        let marker = WatermarkMarker(sourceTopic: 1, sourcePartition: 2, watermarkMs: 1_767_225_599_000, finished: true)
        for record: CountStageRecord in [.interaction(click, countAfter: 42, origin: origin),
                                         .interaction(skip, countAfter: nil, origin: origin),
                                         .impression(shown, origin: origin), .impression(bare, origin: origin),
                                         .interaction(click, countAfter: 43, origin: origin, knownAt: click.ts + 61_000),
                                         .impression(shown, origin: origin, knownAt: shown.ts + 1),
                                         .watermark(marker)] {
            XCTAssertEqual(try roundTrip(record), record)
        }
        // An on-time event's bytes are as before the known-at field existed.
        XCTAssertEqual(CountStageRecord.impression(bare, origin: origin, knownAt: nil).encoded(),
                       CountStageRecord.impression(bare, origin: origin).encoded())
        // A source task broadcasts one marker encoding to every stage.
        XCTAssertEqual(CountStageRecord.watermark(marker).encoded(), RepartitionRecord.watermark(marker).encoded())
    }

    func testATruncatedRecordIsRefused() {
        let bytes = Array(CountStageRecord.impression(Impression(userId: "u", itemsShown: ["a", "b"], ts: 5),
                                                      origin: RecordOrigin(sourceTopic: 1, partition: 0, offset: 1)).encoded().dropLast())
        XCTAssertThrowsError(try bytes.withUnsafeBytes { raw throws(CodecError) in try CountStageRecord.decode(raw) })
    }

    func testItemEventCarriesTheCountWithAndWithoutHistory() throws {
        let origin = RecordOrigin(sourceTopic: 2, partition: 1, offset: 9, subIndex: 4)
        var stamped = ItemEvent(itemId: "i1", userId: "u1", ts: 77, kind: .impression(position: 3), requestId: "r")
        stamped.interactionCount = 12
        var both = ItemEvent(itemId: "i2", userId: "u1", ts: 78, kind: .interaction(.click, dwellMs: nil), userHistory: ["x", "y"])
        both.interactionCount = 0
        // The counts stage's copies of late events: when they are known.
        var lateClick = ItemEvent(itemId: "i3", userId: "u1", ts: 79, kind: .interaction(.click, dwellMs: nil))
        lateClick.knownAtMs = 90_079
        var lateImpression = stamped
        lateImpression.knownAtMs = 78
        for event in [stamped, both, lateClick, lateImpression] {
            let bytes = RepartitionRecord.item(event, origin: origin).encoded()
            XCTAssertEqual(try RepartitionRecord.decode(bytes), .item(event, origin: origin))
            // The features' in-place reader takes the history and skips the count.
            let view = try XCTUnwrap(try bytes.withUnsafeBytes { raw throws(CodecError) in try RepartitionRecord.itemView(raw) })
            XCTAssertEqual(Array(view.userHistory), event.userHistoryEncoded)
            XCTAssertEqual(view.origin, origin)
        }
    }

    /// The source task's in-place writer gives exactly the bytes of the
    /// `Impression` it no longer builds: with and without a request id and
    /// positions, non-ASCII and long ids, one item and many.
    func testImpressionWrittenInPlaceIsTheEncodedImpression() throws {
        var random = SplitMix64(seed: 9)
        for n in 0..<200 {
            let count = 1 + Int(random.next() % 12)
            let items = (0..<count).map { k in k % 3 == 0 ? "ïtem-\(n)-\(k)" : String(repeating: "i", count: 1 + k * 5) }
            let positions: [Int32]? = n % 2 == 0 ? (0..<count).map { Int32($0) - 1 } : nil
            let impression = Impression(requestId: n % 3 == 0 ? nil : "req-\(n)", userId: n % 4 == 0 ? "üser-\(n)" : "u\(n)",
                                        itemsShown: items, positions: positions,
                                        ts: Int64(random.next() % 1_000_000_000_000) - 1_000)
            let origin = RecordOrigin(sourceTopic: 1, partition: Int32(n % 5), offset: Int64(n) * 1_000_003, subIndex: 0)
            let knownAt: Int64? = n % 3 == 1 ? impression.ts + Int64(n) + 1 : nil
            let expected = CountStageRecord.impression(impression, origin: origin, knownAt: knownAt).encoded()
            let itemBytes = items.map { Array($0.utf8) }
            let written: [UInt8] = Array(impression.userId.utf8).withUnsafeBytes { user in
                let request = impression.requestId.map { Array($0.utf8) }
                func withRequest<R>(_ body: (UnsafeRawBufferPointer?) -> R) -> R {
                    guard let request else { return body(nil) }
                    return request.withUnsafeBytes { body($0) }
                }
                return withRequest { requestBytes in
                    let pointers = itemBytes.map { bytes -> UnsafeMutableRawBufferPointer in
                        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
                        bytes.withUnsafeBytes { p.copyMemory(from: $0) }
                        return p
                    }
                    defer { pointers.forEach { $0.deallocate() } }
                    return (positions ?? []).withUnsafeBufferPointer { positionBuffer in
                        var bytes: [UInt8] = []
                        CountStageRecord.withEncodedImpression(
                            userId: user, ts: impression.ts, requestId: requestBytes, count: count,
                            shownItem: { UnsafeRawBufferPointer(pointers[$0]) },
                            positions: positions == nil ? nil : positionBuffer, origin: origin, knownAt: knownAt) { bytes = Array($0) }
                        return bytes
                    }
                }
            }
            XCTAssertEqual(written, expected, "impression \(n)")
        }
    }

    /// The same for interactions: with and without dwell, request id and count.
    func testInteractionWrittenInPlaceIsTheEncodedInteraction() {
        for n in 0..<64 {
            let action = Action.allCases[n % Action.allCases.count]
            let interaction = Interaction(userId: n % 2 == 0 ? "u\(n)" : "üser-with-a-long-id-\(n)", itemId: "ït\(n)",
                                          action: action, dwellMs: n % 3 == 0 ? nil : Int64(n) * 1_000 - 5,
                                          ts: 1_767_225_600_000 + Int64(n), requestId: n % 4 == 0 ? nil : "r\(n)")
            let countAfter: Int64? = n % 5 == 0 ? nil : Int64(n) - 3
            let origin = RecordOrigin(sourceTopic: 0, partition: Int32(n % 3), offset: Int64(n) << 20, subIndex: 0)
            let knownAt: Int64? = n % 3 == 1 ? interaction.ts + 5_001 : nil
            let expected = CountStageRecord.interaction(interaction, countAfter: countAfter, origin: origin, knownAt: knownAt).encoded()
            let written: [UInt8] = Array(interaction.userId.utf8).withUnsafeBytes { user in
                Array(interaction.itemId.utf8).withUnsafeBytes { item in
                    let request = interaction.requestId.map { Array($0.utf8) } ?? []
                    return request.withUnsafeBytes { requestBytes in
                        var bytes: [UInt8] = []
                        CountStageRecord.withEncodedInteraction(
                            userId: user, itemId: item, action: action, dwellMs: interaction.dwellMs, ts: interaction.ts,
                            requestId: interaction.requestId == nil ? nil : requestBytes, countAfter: countAfter,
                            origin: origin, knownAt: knownAt) { bytes = Array($0) }
                        return bytes
                    }
                }
            }
            XCTAssertEqual(written, expected, "interaction \(n)")
        }
    }
}
