import FreshetCore
@testable import FreshetRuntime
import XCTest

final class RecordBundleTests: XCTestCase {
    func record(_ offset: Int64) -> RepartitionRecord {
        .item(ItemEvent(itemId: "i\(offset)", userId: "u", ts: 1_767_225_600_000 + offset, kind: .impression(position: 1), requestId: nil),
              origin: RecordOrigin(sourceTopic: 1, partition: 2, offset: offset, subIndex: 0))
    }

    func testBundleKeepsEveryRecordInOrder() {
        var bundle: [UInt8] = []
        let records = (0..<300).map { record(Int64($0)) }
        for r in records { RecordBundle.append(r.encoded(), to: &bundle) }
        var decoded: [RepartitionRecord] = []
        XCTAssertEqual(RecordBundle.decodeEach(bundle) { decoded.append($0) }, 0)
        XCTAssertEqual(decoded, records)
    }

    func testASingleRecordIsReadAsIs() {
        var decoded: [RepartitionRecord] = []
        XCTAssertEqual(RecordBundle.decodeEach(record(7).encoded()) { decoded.append($0) }, 0)
        XCTAssertEqual(decoded, [record(7)])
    }

    func testATruncatedBundleCountsAsUndecodableAndKeepsWhatItCouldRead() {
        var bundle: [UInt8] = []
        RecordBundle.append(record(1).encoded(), to: &bundle)
        RecordBundle.append(record(2).encoded(), to: &bundle)
        var decoded: [RepartitionRecord] = []
        XCTAssertEqual(RecordBundle.decodeEach(Array(bundle.dropLast(3))) { decoded.append($0) }, 1)
        XCTAssertEqual(decoded, [record(1)])
    }

    /// The bundle's bytes are the format's: the leading byte once, then each
    /// record's LEB128 length and bytes (lengths of 1, 2 and 3 varint bytes).
    func testBundleBytesAreTheDocumentedFormat() {
        func leb128(_ n: Int) -> [UInt8] {
            var out: [UInt8] = [], v = UInt64(n)
            while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
            return out + [UInt8(v)]
        }
        var bundle: [UInt8] = []
        var expected: [UInt8] = [RecordBundle.leadingByte]
        for length in [0, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let record = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ length) }
            RecordBundle.append(record, to: &bundle)
            expected += leb128(length) + record
        }
        XCTAssertEqual(bundle, expected)
    }
}
