import XCTest
@testable import FreshetRedis

/// `RedisCommand.append(maxBytes:_:)` (arguments written in place through a
/// `RESPCursor`, the flush's path) must produce exactly the bytes and
/// argument count of the same arguments appended one by one.
final class RESPCursorTests: XCTestCase {
    static let integers: [Int64] = [0, 1, 9, 10, 11, 99, 100, 101, 999_999, 1_000_000, -1, -9, -10, -123_456,
                                    1_732_700_000_000, Int64(Int32.max), 99_999_999_999_999_999,
                                    999_999_999_999_999_999, 1_000_000_000_000_000_000, .max, .min, .min + 1]

    func testIntegersMatchTheArgumentByArgumentEncoding() {
        for value in Self.integers {
            var expected = RedisCommand("X")
            expected.append(value)
            var actual = RedisCommand("X")
            actual.append(maxBytes: RESPCursor.maxIntegerBytes) { $0.bulk(value) }
            XCTAssertEqual(actual.encoded, expected.encoded, "\(value)")
            XCTAssertEqual(actual.argumentCount, 2)
            XCTAssertEqual(actual.arguments.last, Array(String(value).utf8))
        }
    }

    func testBytesOfEveryLengthClassMatch() {
        // Lengths around each change in the length's digit count, and empty.
        for length in [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 10_000, 100_000] {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            var expected = RedisCommand("X")
            expected.append(bytes)
            var actual = RedisCommand("X")
            bytes.withUnsafeBytes { b in
                actual.append(maxBytes: RESPCursor.maxBytes(length: b.count)) { $0.bulk(b) }
            }
            XCTAssertEqual(actual.encoded, expected.encoded, "length \(length)")
        }
    }

    /// A whole feature hash, as the flush renders it, against the calls it replaced.
    func testAHashOperationMatchesAndLeavesTheBodyCut() {
        let prefixes = ["", "user:", "app1:user:"]
        let ids = ["u1", "", "ünïcode-user-ïd-longer-than-sixteen", String(repeating: "x", count: 300)]
        let jsons = ["[]", "[\"i9\",\"i4\"]", "[" + (0..<50).map { "\"item-\($0)\"" }.joined(separator: ",") + "]"]
        for prefix in prefixes {
            for id in ids {
                for json in jsons {
                    for (count, updated) in [(Int64(0), Int64(-1)), (7, 1_732_700_000_000), (.max, .min)] {
                        var expected = RedisCommand("EVALSHA")
                        expected.append("H")
                        expected.append(prefix, id)
                        expected.append(3)
                        expected.append("recent_items_50")
                        expected.append(Array(json.utf8))
                        expected.append("interaction_count")
                        expected.append(count)
                        expected.append("updated_ms")
                        expected.append(updated)
                        expected.append("after")

                        var actual = RedisCommand("EVALSHA")
                        let p = Array(prefix.utf8), i = Array(id.utf8), j = Array(json.utf8)
                        p.withUnsafeBytes { p in
                            i.withUnsafeBytes { i in
                                j.withUnsafeBytes { j in
                                    let bound = 9 * RESPCursor.maxBytes(length: 0) + 1 + 1 + 17 + 15 + 10 + 40
                                        + p.count + i.count + j.count
                                    actual.append(maxBytes: bound) { c in
                                        c.bulk("H")
                                        c.bulk(p, i)
                                        c.bulk(3)
                                        c.bulk("recent_items_50")
                                        c.bulk(j)
                                        c.bulk("interaction_count")
                                        c.bulk(count)
                                        c.bulk("updated_ms")
                                        c.bulk(updated)
                                    }
                                }
                            }
                        }
                        // The reservation's unused tail is cut: what follows lands right after.
                        actual.append("after")
                        XCTAssertEqual(actual.encoded, expected.encoded, "\(prefix)|\(id)|\(json)|\(count)")
                        XCTAssertEqual(actual.argumentCount, expected.argumentCount)
                    }
                }
            }
        }
    }
}
