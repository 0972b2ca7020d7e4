import XCTest
import FreshetCore

/// The one JSON string escaper, and that the decoder reads back what it writes.
final class JSONEscapeTests: XCTestCase {
    func literal(_ s: String) -> String {
        var out: [UInt8] = []
        JSONEscape.appendString(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func testEscapesQuotesBackslashesAndControlCharacters() {
        XCTAssertEqual(literal("i42"), #""i42""#)
        XCTAssertEqual(literal(""), #""""#)
        XCTAssertEqual(literal("a\"b\\c"), #""a\"b\\c""#)
        XCTAssertEqual(literal("\n\r\t"), #""\n\r\t""#)
        XCTAssertEqual(literal("\u{01}\u{1F}"), #""\u0001\u001f""#)
        XCTAssertEqual(literal("café 😀"), "\"café 😀\"", "non-ASCII passes through")
    }

    func testTheDecoderReadsBackWhatItWrites() throws {
        for id in ["plain", "q\"uote", "back\\slash", "line\nbreak", "\u{07}bell", "é😀"] {
            var json: [UInt8] = Array(#"{"user_id":"#.utf8)
            JSONEscape.appendString(id, to: &json)
            json += Array(#","item_id":"i","action":"click","ts":1732600000000}"#.utf8)
            let event = try EventDecoder().decodeInteraction(json, messageTimestampMs: nil, nowMs: 1_732_700_000_000)
            XCTAssertEqual(Array(event.userId.utf8), Array(id.utf8))
        }
    }
}
