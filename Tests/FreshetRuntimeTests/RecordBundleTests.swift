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
}
