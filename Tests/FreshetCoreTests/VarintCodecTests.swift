import XCTest
import FreshetCore

/// The project's one varint codec (`ByteWriter`, `BorrowedByteReader`,
/// `ByteReader`): exact LEB128 and zigzag bytes, and the refusals.
final class VarintCodecTests: XCTestCase {
    func bytes(_ write: (inout ByteWriter) -> Void) -> [UInt8] {
        var w = ByteWriter()
        write(&w)
        return w.bytes
    }

    func testLEB128BytesAreTheStandardOnes() {
        XCTAssertEqual(bytes { $0.write(varint: 0) }, [0x00])
        XCTAssertEqual(bytes { $0.write(varint: 127) }, [0x7F])
        XCTAssertEqual(bytes { $0.write(varint: 128) }, [0x80, 0x01])
        XCTAssertEqual(bytes { $0.write(varint: 300) }, [0xAC, 0x02])
        XCTAssertEqual(bytes { $0.write(varint: .max) }, [UInt8](repeating: 0xFF, count: 9) + [0x01])
    }

    func testZigzagKeepsSmallNegativesShort() {
        XCTAssertEqual(bytes { $0.write(zigzag: 0) }, [0x00])
        XCTAssertEqual(bytes { $0.write(zigzag: -1) }, [0x01])
        XCTAssertEqual(bytes { $0.write(zigzag: 1) }, [0x02])
        XCTAssertEqual(bytes { $0.write(zigzag: -64) }, [0x7F])
        XCTAssertEqual(bytes { $0.write(zigzag: 64) }, [0x80, 0x01])
        XCTAssertEqual(bytes { $0.write(zigzag: .min) }, [UInt8](repeating: 0xFF, count: 9) + [0x01])
    }

    func testStringsAreLengthPrefixedUTF8() {
        XCTAssertEqual(bytes { $0.write(string: "é") }, [0x02, 0xC3, 0xA9])
        XCTAssertEqual(bytes { $0.write(string: "") }, [0x00])
    }

    func testRoundTripsThroughBothReaders() throws {
        let values: [Int64] = [0, 1, -1, 63, -64, 64, 1_732_700_000_000, -1_732_700_000_000, .max, .min]
        let encoded = bytes { w in for v in values { w.write(zigzag: v) } }
        var owning = ByteReader(encoded)
        for v in values { XCTAssertEqual(try owning.readZigzag("v"), v) }
        XCTAssertTrue(owning.isAtEnd)
        try encoded.withUnsafeBytes { raw in
            var borrowed = BorrowedByteReader(raw)
            for v in values { XCTAssertEqual(try borrowed.readZigzag("v"), v) }
            XCTAssertTrue(borrowed.isAtEnd)
        }
    }

    func testTruncatedOverlongAndOverflowingVarintsAreRefused() {
        func read(_ b: [UInt8]) -> CodecError.Kind? {
            var r = ByteReader(b)
            do { _ = try r.readVarint("v"); return nil } catch { return error.kind }
        }
        XCTAssertEqual(read([0x80]), .truncated)
        XCTAssertEqual(read([]), .truncated)
        XCTAssertEqual(read([UInt8](repeating: 0xFF, count: 9) + [0x02]), .invalidVarint, "the 10th byte carries one bit")
        XCTAssertEqual(read([UInt8](repeating: 0x80, count: 10) + [0x00]), .invalidVarint, "no 11-byte varints")
        XCTAssertNil(read([UInt8](repeating: 0xFF, count: 9) + [0x01]))
    }
}
