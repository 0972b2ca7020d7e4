import FreshetCore
@testable import FreshetRuntime
import XCTest

/// The counts stage's wire formats: its input records (interactions from the
/// sources, impressions' features from the item tasks, markers), and the
/// item event's count extension (which the in-place reader of the features path skips).
final class CountStageRecordTests: XCTestCase {
    func roundTrip(_ record: CountStageRecord) throws -> CountStageRecord {
        let bytes = record.encoded()
        return try bytes.withUnsafeBytes { raw throws(CodecError) in try CountStageRecord.decode(raw) }
    }

    /// An impression's items with their features, as an item task sends them.
    func features(knownAfter: Int64 = 0, requestId: String? = nil) -> ImpressionFeaturesPart {
        let source = RecordOrigin(sourceTopic: 1, partition: 4, offset: 987_654_321)
        let items = [ImpressionFeaturesPart.Item(index: 0, itemId: "a", position: 0, popularity7d: 12, impressions7d: 340),
                     ImpressionFeaturesPart.Item(index: 2, itemId: "ïtem-\(String(repeating: "x", count: 300))", position: nil,
                                                 popularity7d: 0, impressions7d: 1),
                     ImpressionFeaturesPart.Item(index: 7, itemId: "a", position: -3, popularity7d: 5, impressions7d: 6)]
        return ImpressionFeaturesPart(senderPartition: 2, userId: "ü1", ts: 1_767_225_601_000, requestId: requestId,
                                      source: source, knownFrom: 1_767_225_601_000 + knownAfter, items: items)
    }

    func testInteractionImpressionFeaturesAndMarkerRoundTrip() throws {
        let origin = RecordOrigin(sourceTopic: 0, partition: 3, offset: 1_234_567, subIndex: 0)
        let click = Interaction(userId: "ü1", itemId: "i9", action: .click, dwellMs: 4_500, ts: 1_767_225_600_123, requestId: "r7")
        let skip = Interaction(userId: "u1", itemId: "i8", action: .skip, ts: 1_767_225_600_000)
        let marker = WatermarkMarker(sourceTopic: 3, sourcePartition: 2, watermarkMs: 1_767_225_599_000, finished: true)
        var empty = features()
        empty.items = []
        var behind = features()
        behind.behindSendersWatermark = true
        for record: CountStageRecord in [.interaction(click, countAfter: 42, origin: origin),
                                         .interaction(skip, countAfter: nil, origin: origin),
                                         .impressionFeatures(features()), .impressionFeatures(features(requestId: "r")),
                                         .impressionFeatures(features(knownAfter: 7_200_001)), .impressionFeatures(empty),
                                         .impressionFeatures(behind),
                                         .interaction(click, countAfter: 43, origin: origin, knownAt: click.ts + 61_000),
                                         .watermark(marker)] {
            XCTAssertEqual(try roundTrip(record), record)
        }
        XCTAssertEqual(features().sender, DuplicateFilter.Source(topic: 3, partition: 2), "an item partition, as the counts task names it")
        // An item task broadcasts one marker encoding (a source task's format).
        XCTAssertEqual(CountStageRecord.watermark(marker).encoded(), RepartitionRecord.watermark(marker).encoded())
    }

    func testATruncatedRecordIsRefused() {
        let whole = CountStageRecord.impressionFeatures(features()).encoded()
        for length in 0..<whole.count {
            let bytes = Array(whole.prefix(length))
            XCTAssertThrowsError(try bytes.withUnsafeBytes { raw throws(CodecError) in try CountStageRecord.decode(raw) },
                                 "\(length) of \(whole.count) bytes")
        }
        // A known-from time before the impression's is refused.
        var w = ByteWriter(capacity: 64)
        var part = features()
        part.knownFrom = part.ts - 1
        part.encode(into: &w)
        XCTAssertThrowsError(try w.bytes.withUnsafeBytes { raw throws(CodecError) in try CountStageRecord.decode(raw) })
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
    /// `Interaction` it does not build: with and without dwell, request id and count.
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
