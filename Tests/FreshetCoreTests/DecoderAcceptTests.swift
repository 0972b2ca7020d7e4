import XCTest
@testable import FreshetCore

final class DecoderAcceptTests: XCTestCase {
    let decoder = EventDecoder()
    let now: EventTimeMs = 1_732_700_000_000

    func interaction(_ json: String, messageTs: EventTimeMs? = nil) throws -> Interaction {
        try decoder.decodeInteraction(Array(json.utf8), messageTimestampMs: messageTs, nowMs: now)
    }

    func testDesignExample() throws {
        let i = try interaction(#"{"user_id":"u1","item_id":"i9","action":"click","dwell_ms":4500,"ts":1732700000000,"request_id":"r7"}"#)
        XCTAssertEqual(i, Interaction(userId: "u1", itemId: "i9", action: .click, dwellMs: 4500,
                                      ts: 1_732_700_000_000, requestId: "r7"))
    }

    func testIntegerIdsBecomeDecimalStrings() throws {
        let i = try interaction(#" { "user_id" : 42 , "item_id":-7,"action":"like","ts":1732700000000,"request_id":99 } "#)
        XCTAssertEqual(i.userId, "42")
        XCTAssertEqual(i.itemId, "-7")
        XCTAssertEqual(i.requestId, "99")
        XCTAssertEqual(i.action, .like)
        // -0 is the integer 0: one user with 0, not a user "-0".
        let zero = try interaction(#"{"user_id":-0,"item_id":0,"action":"click","ts":1732700000000}"#)
        XCTAssertEqual(zero.userId, "0")
        XCTAssertEqual(zero.itemId, "0")
        XCTAssertEqual(try interaction(#"{"user_id":-10,"item_id":"i1","action":"click","ts":1732700000000}"#).userId, "-10",
                       "only -0 loses its sign")
    }

    func testEscapesAndUnicodeInIds() throws {
        let i = try interaction(#"{"user_id":"u\"q\\\/\n","item_id":"caf\u00e9\ud83d\ude00","action":"sh\u0061re","ts":1732700000000}"#)
        XCTAssertEqual(i.userId, "u\"q\\/\n")
        XCTAssertEqual(i.itemId, "café😀")
        XCTAssertEqual(i.action, .share)
        let raw = try interaction("{\"user_id\":\"ü€\",\"item_id\":\"😀\",\"action\":\"watch\",\"ts\":1732700000000}")
        XCTAssertEqual(raw.userId, "ü€")
        XCTAssertEqual(raw.itemId, "😀")
    }

    func testEscapedKeyIsRecognized() throws {
        let i = try interaction(#"{"user\u005fid":"u1","item_id":"i1","action":"click","ts":1732700000000}"#)
        XCTAssertEqual(i.userId, "u1")
    }

    func testUnknownFieldsAreSkippedIncludingNestedValues() throws {
        let json = #"{"x":{"a":[1,2,{"b":"\"}]\ud83d\ude00"}],"c":null},"user_id":"u1","y":[true,false,null,-1.5e3],"# +
            #""item_id":"i1","action":"skip","z":"}","ts":1732700000000}"#
        let i = try interaction(json)
        XCTAssertEqual(i.action, .skip)
        XCTAssertEqual(i.itemId, "i1")
    }

    func testNullOptionalsAreAbsent() throws {
        let i = try interaction(#"{"user_id":"u1","item_id":"i1","action":"click","dwell_ms":null,"request_id":null,"ts":1732700000000}"#)
        XCTAssertNil(i.dwellMs)
        XCTAssertNil(i.requestId)
    }

    func testMessageTimestampFallback() throws {
        let i = try interaction(#"{"user_id":"u1","item_id":"i1","action":"click"}"#, messageTs: 1_732_600_000_000)
        XCTAssertEqual(i.ts, 1_732_600_000_000)
        let j = try interaction(#"{"user_id":"u1","item_id":"i1","action":"click","ts":null}"#, messageTs: 1_732_600_000_001)
        XCTAssertEqual(j.ts, 1_732_600_000_001)
        // An explicit ts wins over the message timestamp.
        let k = try interaction(#"{"user_id":"u1","item_id":"i1","action":"click","ts":1732600000002}"#, messageTs: 1)
        XCTAssertEqual(k.ts, 1_732_600_000_002)
    }

    func testZeroFractionTimestampAccepted() throws {
        XCTAssertEqual(try interaction(#"{"user_id":"u1","item_id":"i1","action":"click","ts":1732700000000.000}"#).ts,
                       1_732_700_000_000)
    }

    func testImpression() throws {
        let json = #"{"request_id":"r7","user_id":"u1","items_shown":["i9",4,"i9"],"positions":[0,1,2],"ts":1732699999000}"#
        let imp = try decoder.decodeImpression(Array(json.utf8), messageTimestampMs: nil, nowMs: now)
        XCTAssertEqual(imp, Impression(requestId: "r7", userId: "u1", itemsShown: ["i9", "4", "i9"],
                                       positions: [0, 1, 2], ts: 1_732_699_999_000))
        let noPos = try decoder.decodeImpression(Array(#"{"user_id":1,"items_shown":[],"positions":null}"#.utf8),
                                                 messageTimestampMs: 1_732_699_999_000, nowMs: now)
        XCTAssertEqual(noPos.itemsShown, [])
        XCTAssertNil(noPos.positions)
    }

    func testRawBufferEntryPoint() throws {
        let bytes = Array(#"{"user_id":"u1","item_id":"i1","action":"click","ts":1732700000000}"#.utf8)
        let i = try bytes.withUnsafeBytes { buf in
            try decoder.decodeInteraction(buf, messageTimestampMs: nil, nowMs: now)
        }
        XCTAssertEqual(i.userId, "u1")
    }

    /// `readInt` reads plain integers in one pass (`scanPlainInteger`) and
    /// every other number through `scanNumber` and `int64`: both must give
    /// what the general path alone gives, at every boundary of the fast
    /// path (18 and 19 digits, a leading zero, a fraction, an exponent, a
    /// sign, the end of the input) and for what follows the number.
    func testIntegersReadInOnePassMatchTheGeneralPath() throws {
        let texts = ["7", "0", "10", "1732700000000", "123456789012345678", "999999999999999999",
                     "1234567890123456789", "9223372036854775807", "9223372036854775808", "99999999999999999999",
                     "-1", "-9223372036854775808", "-9223372036854775809", "1.0", "1.00", "1.5", "1e3", "12E2", "3e-1",
                     "01", "00", "0.0", "-0", "1.", "1e", "123456789012345678.0", "123456789012345678e1"]
        for text in texts {
            for suffix in ["", ",", "}", " ", "]", "x"] {
                let bytes = Array((text + suffix).utf8)
                let (fast, fastEnd) = Self.readInt(bytes, plainFirst: true)
                let (general, generalEnd) = Self.readInt(bytes, plainFirst: false)
                XCTAssertEqual(fast, general, "value of '\(text + suffix)'")
                XCTAssertEqual(fastEnd, generalEnd, "where '\(text + suffix)' ends")
            }
        }
        XCTAssertEqual(Self.readInt(Array("1732700000000,".utf8), plainFirst: true).0, "1732700000000")
        XCTAssertEqual(Self.readInt(Array("9223372036854775807".utf8), plainFirst: true).0, "9223372036854775807")
        XCTAssertEqual(Self.readInt(Array("9223372036854775808".utf8), plainFirst: true).0, "problem timestamp_out_of_range")
    }

    /// Integer fields are read by the number's value, whatever its spelling
    /// (a breaker's finding: `"ts":1796303716958.0` was accepted and
    /// `"ts":1796303716958e0` dead-lettered as wrong_type).
    func testIntegerFieldsAreReadByValueNotSpelling() {
        let cases: [(String, String)] = [
            ("1796303716958e0", "1796303716958"), ("1796303716958.0", "1796303716958"), ("1.796303716958e12", "1796303716958"),
            ("1796303716.958E3", "1796303716958"), ("17963037169580e-1", "1796303716958"), ("1796303716958000e-3", "1796303716958"),
            ("1e3", "1000"), ("1E+3", "1000"), ("0.5e1", "5"), ("-2.5e1", "-25"), ("-0.0e9", "0"), ("0e-999999999999", "0"),
            ("9.223372036854775807e18", "9223372036854775807"), ("-9.223372036854775808e18", "-9223372036854775808"),
            ("1.5", "problem wrong_type"), ("15e-1", "problem wrong_type"), ("1e-1", "problem wrong_type"),
            ("1796303716958.5e0", "problem wrong_type"), ("1.0000000000000000000001e3", "problem wrong_type"),
            ("9.223372036854775808e18", "problem timestamp_out_of_range"), ("1e19", "problem timestamp_out_of_range"),
            ("1e999999999999999999", "problem timestamp_out_of_range"),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(Self.readInt(Array((text + ",").utf8), plainFirst: true).0, expected, text)
        }
        let decoder = EventDecoder()
        let event = #"{"user_id":"u","item_id":"i","action":"watch","dwell_ms":1.5e3,"ts":1.796303716958e12}"#
        XCTAssertEqual(try decoder.decodeInteraction(Array(event.utf8), messageTimestampMs: nil, nowMs: 1_796_303_716_958),
                       Interaction(userId: "u", itemId: "i", action: .watch, dwellMs: 1500, ts: 1_796_303_716_958, requestId: nil))
    }

    /// What `readInt` reads from `bytes` ("problem <reason>", "error <reason>"
    /// or the value) and where the scanner stops, with the one-pass path
    /// tried first (as the decoder does) or not at all.
    static func readInt(_ bytes: [UInt8], plainFirst: Bool) -> (String, Int) {
        bytes.withUnsafeBytes { buf in
            var s = JSONScanner(buf)
            var problem: BadInput?
            do throws(BadInput) {
                let value: Int64?
                if plainFirst {
                    value = try s.readInt("ts", rangeReason: .timestampOutOfRange, &problem)
                } else {
                    // The general path alone: readInt's body after the fast path.
                    let t = try s.scanNumber()
                    switch s.integerValue(t) {
                    case .integer(let v): value = v
                    case .fractional: value = nil; problem = BadInput(.wrongType, "")
                    case .outOfRange: value = nil; problem = BadInput(.timestampOutOfRange, "")
                    }
                }
                if let problem { return ("problem \(problem.reason.rawValue)", s.pos) }
                return (value.map(String.init) ?? "nil", s.pos)
            } catch {
                return ("error \(error.reason.rawValue)", s.pos)
            }
        }
    }
    /// `scanString` finds the end of a string eight bytes at a time; checked
    /// against a byte-at-a-time reading of the same grammar with one special
    /// byte ('"' ending the string, an escape, a control byte, a stray byte
    /// ≥ 0x80 of UTF-8) at every offset of strings 0-24 bytes long, each
    /// followed by 0-9 more bytes, so the special byte falls at every place
    /// in a word and in the byte-by-byte tail at the end of the input.
    func testStringScanMatchesAByteAtATimeReading() {
        let fillers: [[UInt8]] = [[], Array("\\n".utf8), Array("\\u00e9".utf8), [0x1F], [0x0A], [0xC3, 0xA9], [0xFF], [0x22]]
        var checked = 0
        for length in 0...24 {
            for at in 0...length {
                for filler in fillers {
                    for tail in 0...9 {
                        var content = Array(repeating: UInt8(ascii: "a"), count: length)
                        content.insert(contentsOf: filler, at: at)
                        let bytes = [UInt8(ascii: "\"")] + content + [UInt8(ascii: "\"")] + Array(repeating: UInt8(ascii: "x"), count: tail)
                        let expected = Self.referenceScan(bytes)
                        let got: String = bytes.withUnsafeBytes { buf in
                            var s = JSONScanner(buf)
                            do throws(BadInput) {
                                let t = try s.scanString()
                                return "string \(t.start)..<\(t.end) escapes \(t.hasEscapes) next \(s.pos)"
                            } catch {
                                return "error \(error.reason.rawValue)"
                            }
                        }
                        XCTAssertEqual(got, expected, "\(bytes)")
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 20_000)
        // Unterminated, also when the input ends inside a word-sized run.
        for n in 0...17 {
            let bytes = [UInt8(ascii: "\"")] + Array(repeating: UInt8(ascii: "b"), count: n)
            let got: String = bytes.withUnsafeBytes { buf in
                var s = JSONScanner(buf)
                do throws(BadInput) { _ = try s.scanString(); return "string" } catch { return error.detail }
            }
            XCTAssertTrue(got.hasPrefix("unterminated string"), "\(n) bytes: \(got)")
        }
    }

    /// `nextField` reads the usual member inline (its comma, then a key as
    /// events spell it, recognised from word loads by `scanKnownKey`); it
    /// must give the field, position and error of the general reading
    /// (whitespace, the comma or brace, `scanString`, `field`, `expect`),
    /// for the keys, every one-byte change and cut of them, whitespace
    /// before the colon, escapes, each separator before the key, first
    /// member or not, and every distance to the end of the input.
    func testKnownKeysMatchTheGeneralReading() {
        let names = ["user_id", "item_id", "action", "dwell_ms", "ts", "request_id", "items_shown", "positions", "t", "x"]
        var keys: [[UInt8]] = []
        for name in names {
            let spelled = Array("\"\(name)\":".utf8)
            keys.append(spelled)
            keys.append(Array("\"\(name)\" :".utf8))
            keys.append(Array("\"\\u00\(String(name.utf8.first!, radix: 16))\(name.dropFirst())\":".utf8))
            keys += Self.cutsAndOneByteChanges(of: spelled,
                                               replacements: [UInt8(ascii: "\""), UInt8(ascii: "_"), UInt8(ascii: "\\"), 0x01, UInt8(ascii: " ")])
        }
        // What comes before the key: after the brace (first member) or after a value.
        let separators: [(String, Bool)] = [("", true), (" ", true), ("}", true), (",", false), (" ,", false),
                                            (", ", false), ("}", false), ("x", false), ("", false), (",,", false)]
        var checked = 0
        for key in keys {
            for (separator, isFirst) in separators {
                for tail in 0...18 {
                    let bytes = Array(separator.utf8) + key + Array(repeating: UInt8(ascii: "1"), count: tail)
                    bytes.withUnsafeBytes { buf in
                        var general = JSONScanner(buf)
                        let expected: String
                        do throws(BadInput) {
                            expected = try Self.referenceNextField(&general, first: isFirst).map { "\($0) at \(general.pos)" } ?? "end"
                        } catch {
                            expected = error.description
                        }
                        var fast = JSONScanner(buf)
                        var first = isFirst
                        let got: String
                        do throws(BadInput) {
                            got = try fast.nextField(first: &first).map { "\($0) at \(fast.pos)" } ?? "end"
                        } catch {
                            got = error.description
                        }
                        XCTAssertEqual(got, expected, "\(isFirst ? "first" : "next"): \(String(decoding: bytes, as: UTF8.self))")
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 100_000)
    }

    /// Every cut of `spelled` (its first 0..<count bytes), each followed by
    /// its copies with the byte at the cut replaced by each of `replacements`.
    static func cutsAndOneByteChanges(of spelled: [UInt8], replacements: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for at in spelled.indices {
            out.append(Array(spelled[..<at]))
            for replacement in replacements {
                var changed = spelled
                changed[at] = replacement
                out.append(changed)
            }
        }
        return out
    }

    /// `readAction` recognises an action as events write it from one word
    /// load (`scanKnownAction`); it must give the action, problem, position
    /// and error of the general reading (`readOtherAction`) for each name,
    /// every one-byte change and cut of it, escapes, and every distance to
    /// the end of the input.
    func testKnownActionsMatchTheGeneralReading() {
        var values: [[UInt8]] = [Array("null".utf8), Array("1".utf8), Array("\"cl\\u0069ck\"".utf8)]
        for name in ["click", "watch", "like", "share", "skip", "buy", "clicks", "lik"] {
            let spelled = Array("\"\(name)\"".utf8)
            values.append(spelled)
            values += Self.cutsAndOneByteChanges(of: spelled,
                                                 replacements: [UInt8(ascii: "\""), UInt8(ascii: "x"), UInt8(ascii: "\\"), 0x01, UInt8(ascii: "K")])
        }
        var checked = 0
        for value in values {
            for tail in 0...9 {
                let bytes = value + Array(repeating: UInt8(ascii: "}"), count: tail)
                bytes.withUnsafeBytes { buf in
                    func read(_ general: Bool) -> String {
                        var s = JSONScanner(buf)
                        var problem: BadInput?
                        do throws(BadInput) {
                            let action = general ? try s.readOtherAction(&problem) : try s.readAction(&problem)
                            return "\(String(describing: action)) \(String(describing: problem)) at \(s.pos)"
                        } catch {
                            return "\(error) at \(s.pos)"
                        }
                    }
                    XCTAssertEqual(read(false), read(true), String(decoding: bytes, as: UTF8.self))
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 3_000)
    }

    /// A member read in general, as the decoder read every member before
    /// `scanKnownKey`.
    static func referenceNextField(_ s: inout JSONScanner, first: Bool) throws(BadInput) -> EventField? {
        s.skipWhitespace()
        if first {
            if s.peek() == UInt8(ascii: "}") { s.pos += 1; return nil }
        } else {
            guard let c = s.peek() else { throw s.syntaxError("unterminated object") }
            if c == UInt8(ascii: "}") { s.pos += 1; return nil }
            guard c == UInt8(ascii: ",") else { throw s.syntaxError("expected ',' or '}'") }
            s.pos += 1
            s.skipWhitespace()
        }
        let field = s.field(try s.scanString())
        try s.expect(UInt8(ascii: ":"), "':'")
        s.skipWhitespace()
        return field
    }

    /// The string at the start of `bytes` read one byte at a time (the
    /// grammar of RFC 8259 for the escapes the scanner accepts).
    static func referenceScan(_ bytes: [UInt8]) -> String {
        var i = 1
        var escapes = false
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { return "string 1..<\(i) escapes \(escapes) next \(i + 1)" }
            if b < 0x20 { return "error malformed_json" }
            if b == UInt8(ascii: "\\") {
                escapes = true
                guard i + 1 < bytes.count else { return "error malformed_json" }
                switch bytes[i + 1] {
                case UInt8(ascii: "u"):
                    let hex = bytes[min(bytes.count, i + 2)..<min(bytes.count, i + 6)]
                    guard hex.count == 4, hex.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
                        return "error malformed_json"
                    }
                    i += 6
                case UInt8(ascii: "n"), UInt8(ascii: "\""), UInt8(ascii: "\\"): i += 2
                default: return "error malformed_json"
                }
                continue
            }
            i += 1
        }
        return "error malformed_json"
    }
}
