import FreshetEmbeddings
import XCTest

/// The compact examples encoding (`ExampleCodec`): exact round trips, the
/// documented byte layout, and clear errors on malformed bundles.
final class ExampleCodecTests: XCTestCase {
    static let full = TrainingExample(label: .positive, userId: "u1", itemId: "i9", action: .click, position: 3, dwellMs: 4_500,
                                      requestId: "r7", impressionTs: 1_732_699_999_000, eventTs: 1_732_700_000_000,
                                      features: ServingFeatures(interactionCount: 12, popularity7d: 120, impressions7d: 900))

    func testRoundTripsEveryShape() throws {
        let examples: [TrainingExample] = [
            Self.full,
            TrainingExample(label: .negative, userId: "u", itemId: "i", action: nil, eventTs: 5),
            TrainingExample(label: .negative, userId: "caf\u{E9}", itemId: "cafe\u{301}", action: .skip, eventTs: -3,
                            features: ServingFeatures(interactionCount: -1, popularity7d: 0, impressions7d: Int64.max)),
            TrainingExample(label: .positive, userId: "", itemId: String(repeating: "x", count: 300), action: .share, position: 0,
                            requestId: "", impressionTs: 10, eventTs: 9, late: true),
            TrainingExample(label: .positive, userId: "u2", itemId: "i2", action: .watch, dwellMs: -1, eventTs: Int64.min),
        ]
        var bundle = ExampleCodec.header
        for e in examples { ExampleCodec.append(e, to: &bundle) }
        let decoded = try ExampleCodec.decodeBundle(bundle)
        XCTAssertEqual(decoded, examples)
        XCTAssertEqual(decoded.map { Array($0.userId.utf8) }, examples.map { Array($0.userId.utf8) }, "ids keep their bytes")
        XCTAssertEqual(decoded.map { Array($0.itemId.utf8) }, examples.map { Array($0.itemId.utf8) })
    }

    /// The layout documented in docs/EMBEDDINGS.md, byte for byte.
    func testLayoutIsTheDocumentedOne() {
        let bytes = ExampleCodec.encode(Self.full)
        var expected: [UInt8] = [0b0111_1101, 1]               // flags (label, position, dwell, request, impression ts, features), click
        expected += [2] + Array("u1".utf8) + [2] + Array("i9".utf8)
        expected += zigzag(1_732_700_000_000)                  // ts
        expected += zigzag(1_000)                              // ts − impression ts
        expected += zigzag(3) + zigzag(4_500)                  // position, dwell
        expected += [2] + Array("r7".utf8)                     // request id
        expected += zigzag(12) + zigzag(120) + zigzag(900)     // features
        XCTAssertEqual(bytes, expected)
        XCTAssertLessThan(bytes.count, Self.full.jsonBytes().count / 3, "compact: under a third of the JSON line")
        XCTAssertEqual(ExampleCodec.encode(TrainingExample(label: .negative, userId: "u", itemId: "i", action: nil, eventTs: 5)),
                       [0, 0, 1, UInt8(ascii: "u"), 1, UInt8(ascii: "i"), 10])
    }

    func testMalformedBundlesAreRefused() {
        XCTAssertThrowsError(try ExampleCodec.decodeBundle(Array("{\"label\":1}".utf8)), "JSON is not a bundle")
        var bundle = ExampleCodec.header
        ExampleCodec.append(Self.full, to: &bundle)
        for cut in 1..<(bundle.count - ExampleCodec.header.count) {
            XCTAssertThrowsError(try ExampleCodec.decodeBundle(Array(bundle.dropLast(cut))), "truncated by \(cut)")
        }
        var badAction = bundle
        badAction[ExampleCodec.header.count + 1] = 9
        XCTAssertThrowsError(try ExampleCodec.decodeBundle(badAction)) { error in
            XCTAssertTrue("\(error)".contains("unknown action 9"), "\(error)")
        }
        XCTAssertEqual(try ExampleCodec.decodeBundle(ExampleCodec.header), [], "an empty bundle has no examples")
    }

    private func zigzag(_ v: Int64) -> [UInt8] {
        var z = UInt64(bitPattern: (v << 1) ^ (v >> 63))
        var out: [UInt8] = []
        while z >= 0x80 { out.append(UInt8(truncatingIfNeeded: z) | 0x80); z >>= 7 }
        out.append(UInt8(z))
        return out
    }
}
