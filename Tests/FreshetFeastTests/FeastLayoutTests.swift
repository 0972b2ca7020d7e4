import FreshetFeast
import XCTest

/// Byte-for-byte reproductions of FEAST_LAYOUT.md's worked examples, which
/// Feast 0.67 itself wrote and read back: keys, field names, values, timestamps.
final class FeastLayoutTests: XCTestCase {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.filter { !$0.isWhitespace })
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }

    // MARK: - Section 5: worked examples

    func testUserKeyOfTheWorkedExample() {
        let key = FeastEntityKey.encode(joinKey: "user_id", value: "u1", project: "recsys")
        XCTAssertEqual(hex(key), "01000000" + "02000000" + "07000000" + "757365725f6964" + "02000000" + "02000000" + "7531" + "726563737973")
    }

    func testItemKeyOfTheWorkedExample() {
        let key = FeastEntityKey.encode(joinKey: "item_id", value: "i9", project: "recsys")
        XCTAssertEqual(hex(key), "01000000" + "02000000" + "07000000" + "6974656d5f6964" + "02000000" + "02000000" + "6939" + "726563737973")
    }

    func testNonASCIIIdIsPlainUTF8() {
        let key = FeastEntityKey.encode(joinKey: "user_id", value: "ué-漢", project: "recsys")
        XCTAssertTrue(hex(key).hasSuffix("02000000" + "07000000" + "75c3a92de6bca2" + "726563737973"), hex(key))
        // Composed and decomposed é are different ids (byte equality, no normalisation).
        XCTAssertNotEqual(FeastEntityKey.encode(joinKey: "user_id", value: "\u{e9}", project: "p"),
                          FeastEntityKey.encode(joinKey: "user_id", value: "e\u{301}", project: "p"))
    }

    func testSeveralJoinKeysAreSortedByBytesNamesFirst() {
        let key = FeastEntityKey.encode(stringJoinKeys: [("user_id", "u1"), ("item_id", "i9")], project: "p")
        XCTAssertEqual(hex(key), "02000000"
                       + "02000000" + "07000000" + "6974656d5f6964" + "02000000" + "07000000" + "757365725f6964"
                       + "02000000" + "02000000" + "6939" + "02000000" + "02000000" + "7531" + "70")
    }

    func testFieldNamesMatchTheGoldenTable() {
        let golden: [(String, String, String)] = [
            ("user_features", "recent_items_50", "c58c670a"),
            ("user_features", "interaction_count", "940215c1"),
            ("user_features", "embedding", "8dce1ec6"),
            ("item_features", "popularity_7d", "d60f9375"),
            ("item_features", "impressions_7d", "6e6654a2"),
            ("item_features", "embedding", "e2d3907b"),
        ]
        for (view, feature, expected) in golden {
            XCTAssertEqual(hex(FeastFieldName.feature(view: view, feature: feature)), expected, "\(view):\(feature)")
        }
        XCTAssertEqual(hex(FeastFieldName.timestamp(view: "user_features")), "5f74733a757365725f6665617475726573")
        XCTAssertEqual(hex(FeastFieldName.timestamp(view: "item_features")), "5f74733a6974656d5f6665617475726573")
    }

    func testUserRowValuesOfTheWorkedExample() {
        XCTAssertEqual(hex(FeastValue.timestamp(epochMs: 1_767_225_600_500)), "0880f2d6ca061080cab5ee01")
        XCTAssertEqual(hex(FeastValue.stringList(["i9", "i4", "i17"])), "620d0a0269390a0269340a03693137")
        XCTAssertEqual(hex(FeastValue.int64(7)), "2007")
        let embedding = (0..<128).map { Float(-1) + Float($0) / 64 }
        let value = FeastValue.floatList(float32LittleEndian: Self.blob(embedding))
        XCTAssertEqual(value.count, 519)
        XCTAssertEqual(hex(Array(value.prefix(23))), "820183040a8004" + "000080bf" + "00007cbf" + "000078bf" + "000074bf")
        XCTAssertEqual(SHA256ForTests.hex(value), "8d6ec1ab636daa636387b79562a91a3fcb4e904bfde34b4c527b0d47d9f8b808")
    }

    func testItemRowValuesOfTheWorkedExample() {
        XCTAssertEqual(hex(FeastValue.int64(42)), "202a")
        XCTAssertEqual(hex(FeastValue.int64(1000)), "20e807")
        let embedding = (0..<128).map { Float(0.5) - Float($0) / 128 }
        let value = FeastValue.floatList(float32LittleEndian: Self.blob(embedding))
        XCTAssertEqual(value.count, 519)
        XCTAssertEqual(hex(Array(value.prefix(23))), "820183040a8004" + "0000003f" + "0000fc3e" + "0000f83e" + "0000f43e")
        XCTAssertEqual(SHA256ForTests.hex(value), "6ed71a15fadd4e7d08d1cc16c200afc7fcc93a53bc5dda405a1f38643043898a")
    }

    // MARK: - Section 4: edge cases of the value encodings

    func testInt64Values() {
        XCTAssertEqual(hex(FeastValue.int64(0)), "2000", "a zero count is still written")
        XCTAssertEqual(hex(FeastValue.int64(5_000_000_000)), "2080e497d012")
        XCTAssertEqual(hex(FeastValue.int64(-1)), "20ffffffffffffffffff01", "negative: 64-bit two's complement, 10 bytes")
    }

    func testListEdgeCases() {
        XCTAssertEqual(hex(FeastValue.stringList([])), "6200")
        XCTAssertEqual(hex(FeastValue.stringList([""])), "62020a00")
        XCTAssertEqual(hex(FeastValue.floatList(float32LittleEndian: [])), "820100")
    }

    func testTimestamps() {
        XCTAssertEqual(hex(FeastValue.timestamp(epochMs: 1_767_225_602_000)), "0882f2d6ca06", "zero nanos left out")
        XCTAssertEqual(hex(FeastValue.timestamp(epochMs: 0)), "", "both fields zero: empty message")
        // Before 1970: floor division keeps nanos non-negative (-1 ms = -1 s + 999 ms).
        var expected: [UInt8] = [0x08]
        ProtoWire.appendVarint(int64: -1, to: &expected)
        expected += [0x10]
        ProtoWire.appendVarint(999_000_000, to: &expected)
        XCTAssertEqual(FeastValue.timestamp(epochMs: -1), expected)
    }

    // MARK: - Building blocks

    func testVarints() {
        func varint(_ value: UInt64) -> String { var b: [UInt8] = []; ProtoWire.appendVarint(value, to: &b); return hex(b) }
        XCTAssertEqual(varint(0), "00")
        XCTAssertEqual(varint(127), "7f")
        XCTAssertEqual(varint(128), "8001")
        XCTAssertEqual(varint(300), "ac02")
        XCTAssertEqual(varint(UInt64.max), "ffffffffffffffffff01")
        XCTAssertEqual(ProtoWire.varintSize(UInt64.max), 10)
        XCTAssertEqual(ProtoWire.varintSize(127), 1)
    }

    func testMurmur3ReferenceVectors() {
        // Published test vectors of MurmurHash3_x86_32 (every tail length).
        XCTAssertEqual(Murmur3.x86_32([UInt8](), seed: 0), 0)
        XCTAssertEqual(Murmur3.x86_32([UInt8](), seed: 1), 0x514e_28b7)
        XCTAssertEqual(Murmur3.x86_32([UInt8](), seed: 0xffff_ffff), 0x81f1_6f39)
        XCTAssertEqual(Murmur3.x86_32([0xff, 0xff, 0xff, 0xff], seed: 0), 0x7629_3b50)
        XCTAssertEqual(Murmur3.x86_32([0x21, 0x43, 0x65, 0x87], seed: 0), 0xf55b_516b)
        XCTAssertEqual(Murmur3.x86_32([0x21, 0x43, 0x65], seed: 0), 0x7e4a_8634)
        XCTAssertEqual(Murmur3.x86_32([0x21, 0x43], seed: 0), 0xa0f7_b07a)
        XCTAssertEqual(Murmur3.x86_32([0x21], seed: 0), 0x7266_1cf4)
        XCTAssertEqual(Murmur3.x86_32(Array("Hello, world!".utf8), seed: 1234), 0xfaf6_cdb3)
    }

    static func blob(_ values: [Float]) -> [UInt8] {
        values.flatMap { value -> [UInt8] in
            let bits = value.bitPattern
            return [UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                    UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24)]
        }
    }
}
