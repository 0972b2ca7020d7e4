import XCTest
@testable import FreshetCore

final class DecoderRejectTests: XCTestCase {
    let decoder = EventDecoder()
    let now: EventTimeMs = 1_732_700_000_000

    func reason(_ bytes: [UInt8], messageTs: EventTimeMs? = nil, file: StaticString = #filePath,
                line: UInt = #line) -> BadInput? {
        do {
            _ = try decoder.decodeInteraction(bytes, messageTimestampMs: messageTs, nowMs: now)
            XCTFail("accepted", file: file, line: line)
            return nil
        } catch {
            XCTAssertFalse(error.detail.isEmpty, file: file, line: line)
            return error
        }
    }

    func reason(_ json: String, file: StaticString = #filePath, line: UInt = #line) -> BadInput.Reason? {
        reason(Array(json.utf8), file: file, line: line)?.reason
    }

    func impressionReason(_ json: String) -> BadInput.Reason? {
        do {
            _ = try decoder.decodeImpression(Array(json.utf8), messageTimestampMs: nil, nowMs: now)
            XCTFail("accepted \(json)")
            return nil
        } catch { return error.reason }
    }

    func testInvalidUTF8() {
        var bytes = Array(#"{"user_id":"u1","item_id":"i1","action":"click","ts":1732700000000}"#.utf8)
        bytes[13] = 0xFF
        XCTAssertEqual(reason(bytes)?.reason, .invalidUTF8)
        // Overlong encoding, encoded surrogate, truncated sequence.
        for bad: [UInt8] in [[0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80]] {
            var b = Array(#"{"user_id":"u"#.utf8)
            b += bad
            b += Array(#"","item_id":"i1","action":"click","ts":1732700000000}"#.utf8)
            XCTAssertEqual(reason(b)?.reason, .invalidUTF8, "\(bad)")
        }
    }

    func testMalformedJSON() {
        for json in ["", "   ", "{", #"{"user_id":"u1""#, #"{"user_id":"u1",}"#, #"{"user_id" "u1"}"#,
                     #"{"user_id":"u1","item_id":"i1","action":"click","ts":1732700000000} x"#,
                     #"{"user_id":"u1","item_id":"i1","action":"click","ts":01}"#,
                     #"{"user_id":"\ud800","item_id":"i1","action":"click"}"#,
                     #"{"user_id":"a\qb","item_id":"i1","action":"click"}"#,
                     "{\"user_id\":\"a\u{01}b\",\"item_id\":\"i1\",\"action\":\"click\"}",
                     #"{"user_id":true,"x":tru}"#, // syntax wins over the wrong type seen first
                     #"{"user_id":"u1","x":[1,2}"#] {
            XCTAssertEqual(reason(json), .malformedJSON, json)
        }
    }

    func testNotAnObject() {
        XCTAssertEqual(reason(#"[{"user_id":"u1"}]"#), .notAnObject)
        XCTAssertEqual(reason(#""hello""#), .notAnObject)
        XCTAssertEqual(reason("42"), .notAnObject)
    }

    func testMissingField() {
        XCTAssertEqual(reason(#"{"item_id":"i1","action":"click","ts":1732700000000}"#), .missingField)
        XCTAssertEqual(reason(#"{"user_id":"u1","action":"click","ts":1732700000000}"#), .missingField)
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":"i1","ts":1732700000000}"#), .missingField)
        XCTAssertEqual(reason(#"{"user_id":null,"item_id":"i1","action":"click","ts":1732700000000}"#), .missingField)
        // No ts and no message timestamp.
        let e = reason(Array(#"{"user_id":"u1","item_id":"i1","action":"click"}"#.utf8))
        XCTAssertEqual(e?.reason, .missingField)
        XCTAssertTrue(e?.detail.contains("ts") ?? false)
        XCTAssertEqual(impressionReason(#"{"user_id":"u1","ts":1732700000000}"#), .missingField)
    }

    func testWrongType() {
        XCTAssertEqual(reason(#"{"user_id":true,"item_id":"i1","action":"click","ts":1732700000000}"#), .wrongType)
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":1.5,"action":"click","ts":1732700000000}"#), .wrongType)
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":"i1","action":1,"ts":1732700000000}"#), .wrongType)
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":"i1","action":"click","ts":"1732700000000"}"#), .wrongType)
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":"i1","action":"click","ts":1732700000000.5}"#), .wrongType)
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":"i1","action":"click","dwell_ms":"5"}"#), .wrongType)
        XCTAssertEqual(impressionReason(#"{"user_id":"u1","items_shown":"i1","ts":1732700000000}"#), .wrongType)
        XCTAssertEqual(impressionReason(#"{"user_id":"u1","items_shown":["i1",null],"ts":1732700000000}"#), .wrongType)
    }

    func testUnknownAction() {
        let e = reason(Array(#"{"user_id":"u1","item_id":"i1","action":"buy","ts":1732700000000}"#.utf8))
        XCTAssertEqual(e?.reason, .unknownAction)
        XCTAssertEqual(e?.detail, "field 'action' has unknown value 'buy'")
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":"i1","action":"Click","ts":1732700000000}"#), .unknownAction)
    }

    func testTimestampOutOfRange() {
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":"i1","action":"click","ts":915148800000}"#),
                       .timestampOutOfRange) // 1999
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":"i1","action":"click","ts":1732872800000}"#),
                       .timestampOutOfRange) // two days ahead of now
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":"i1","action":"click","ts":99999999999999999999}"#),
                       .timestampOutOfRange)
        XCTAssertEqual(reason(Array(#"{"user_id":"u1","item_id":"i1","action":"click"}"#.utf8), messageTs: 5)?.reason,
                       .timestampOutOfRange)
    }

    /// The messages name the time's source (the field or the message
    /// timestamp) and the bound crossed, word for word.
    func testTimestampOutOfRangeMessages() {
        let noTs = Array(#"{"user_id":"u1","item_id":"i1","action":"click"}"#.utf8)
        func withTs(_ ts: String) -> [UInt8] { Array((#"{"user_id":"u1","item_id":"i1","action":"click","ts":"# + ts + "}").utf8) }
        XCTAssertEqual(reason(withTs("915148800000"))?.detail,
                       "field 'ts' 915148800000 is before the earliest accepted 946684800000")
        XCTAssertEqual(reason(withTs("1732872800000"), messageTs: 1_732_000_000_000)?.detail,
                       "field 'ts' 1732872800000 is more than 86400000 ms after now (1732700000000)")
        XCTAssertEqual(reason(noTs, messageTs: 5)?.detail, "message timestamp 5 is before the earliest accepted 946684800000")
        XCTAssertEqual(reason(noTs, messageTs: 1_732_872_800_000)?.detail,
                       "message timestamp 1732872800000 is more than 86400000 ms after now (1732700000000)")
        XCTAssertEqual(reason(noTs)?.detail, "missing field 'ts' and the message has no timestamp")
    }

    func testInvalidField() {
        XCTAssertEqual(reason(#"{"user_id":"u1","item_id":"i1","action":"click","dwell_ms":-1,"ts":1732700000000}"#),
                       .invalidField)
        XCTAssertEqual(reason(#"{"user_id":"","item_id":"i1","action":"click","ts":1732700000000}"#), .invalidField)
        XCTAssertEqual(impressionReason(#"{"user_id":"u1","items_shown":["a","b"],"positions":[0],"ts":1732700000000}"#),
                       .invalidField)
        XCTAssertEqual(impressionReason(#"{"user_id":"u1","items_shown":["a"],"positions":[4294967296],"ts":1732700000000}"#),
                       .invalidField)
    }

    func testDeepNestingIsRejectedNotCrashing() {
        // Valid JSON, but deeper than the limit: its own reason (not malformed).
        let deep = "{\"x\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
        XCTAssertEqual(reason(deep), .nestingTooDeep)
        // Far deeper still, unterminated: refused at the limit without recursion.
        XCTAssertEqual(reason("{\"x\":" + String(repeating: "[", count: 1_000_000)), .nestingTooDeep)
    }
}
