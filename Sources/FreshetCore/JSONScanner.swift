/// The span of a JSON string's content (between the quotes) inside the input buffer.
struct JSONStringToken {
    var start: Int
    var end: Int
    /// True when the content contains backslash escapes and must be unescaped.
    var hasEscapes: Bool
}

/// The span of a JSON number inside the input buffer, with its shape.
struct JSONNumberToken {
    var start: Int
    var end: Int
    var negative: Bool
    /// End of the integer digits (start of `.` / `e`, or `end`).
    var intEnd: Int
    /// True when there is a fraction part made only of zeros and no exponent.
    var hasZeroFraction: Bool
    /// True when there is a non-zero fraction or an exponent.
    var isNonInteger: Bool
}

/// A forward-only JSON tokenizer over raw UTF-8 bytes.
///
/// It never allocates except when a string value is materialized. It assumes the
/// bytes were already validated as UTF-8, so string content can be copied verbatim.
/// Every syntax error is thrown as `BadInput(.malformedJSON)` naming the offset.
struct JSONScanner {
    let buf: UnsafeRawBufferPointer
    var pos: Int = 0

    /// Nesting limit for skipped values (containers, counting the top-level
    /// object). Valid JSON nested deeper is dead-lettered as `nesting_too_deep`;
    /// the limit bounds the work an adversarial message can ask for.
    static let maxDepth = 1_000

    init(_ buf: UnsafeRawBufferPointer) { self.buf = buf }

    var atEnd: Bool { pos >= buf.count }

    @inline(__always)
    func peek() -> UInt8? { pos < buf.count ? buf[pos] : nil }

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < buf.count {
            let b = buf[pos]
            guard isJSONWhitespace(b) else { return }
            pos &+= 1
        }
    }

    func syntaxError(_ what: String) -> BadInput {
        if pos >= buf.count { return BadInput(.malformedJSON, "\(what) at end of input (offset \(pos))") }
        let b = buf[pos]
        let shown = (b >= 0x20 && b < 0x7F) ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
        return BadInput(.malformedJSON, "\(what), found \(shown) at offset \(pos)")
    }

    /// Consumes `byte` (after whitespace) or throws.
    @inline(__always)
    mutating func expect(_ byte: UInt8, _ what: StaticString) throws(BadInput) {
        skipWhitespace()
        guard pos < buf.count, buf[pos] == byte else { throw syntaxError("expected \(what)") }
        pos &+= 1
    }

    // MARK: strings

    /// Scans a string starting at the opening quote; leaves `pos` after the closing quote.
    @inline(__always)
    mutating func scanString() throws(BadInput) -> JSONStringToken {
        let n = buf.count
        guard pos < n, buf[pos] == UInt8(ascii: "\"") else { throw syntaxError("expected string") }
        let start = pos &+ 1
        // A local index keeps the hot loop in registers (`pos` lives in memory).
        var i = start
        var escapes = false
        while true {
            // Eight bytes at a time: the mask's lowest flag is the first special
            // byte, so its offset comes from a trailing-zero count instead of a
            // byte loop (an id or key and its closing quote usually fit in one
            // word: the byte loop that used to follow cost ~9 instructions a byte).
            if i &+ 8 <= n {
                let special = Self.stringSpecialMask(UInt64(littleEndian: buf.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                if special == 0 {
                    i &+= 8
                    continue
                }
                i &+= special.trailingZeroBitCount &>> 3
            } else {
                // The last few bytes of the input, one at a time.
                while i < n && !Self.isStringSpecial(buf[i]) { i &+= 1 }
                if i >= n {
                    pos = i
                    throw syntaxError("unterminated string")
                }
            }
            let b = buf[i]
            if b == UInt8(ascii: "\"") {
                pos = i &+ 1
                return JSONStringToken(start: start, end: i, hasEscapes: escapes)
            }
            pos = i
            if b != UInt8(ascii: "\\") { throw syntaxError("unescaped control character in string") }
            escapes = true
            try scanEscape()
            i = pos
        }
    }

    /// True for the bytes that end a run of ordinary string content: '"',
    /// '\\' and the control bytes (< 0x20).
    @inline(__always)
    static func isStringSpecial(_ b: UInt8) -> Bool {
        b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20
    }

    /// The high bit of each byte of `w` (little-endian: byte 0 is the lowest)
    /// that is '"', '\\' or a control byte (< 0x20), and possibly of bytes
    /// above such a byte; 0 when there is none. The classic SWAR tests
    /// (x − 0x01…01) & ~x & 0x80…80 for a zero byte and (x − n·0x01…01) & ~x
    /// & 0x80…80 for a byte below n (Anderson, "Bit Twiddling Hacks") flag
    /// bytes wrongly only above a true one, through the borrow, so the
    /// lowest flag is always exact.
    @inline(__always)
    static func stringSpecialMask(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quote = w ^ (ones &* 0x22)
        let backslash = w ^ (ones &* 0x5C)
        let zq = (quote &- ones) & ~quote
        let zb = (backslash &- ones) & ~backslash
        let control = (w &- ones &* 0x20) & ~w
        return (zq | zb | control) & highs
    }

    /// Validates one escape sequence at `pos` (the backslash) and moves past it.
    private mutating func scanEscape() throws(BadInput) {
        pos &+= 1
        guard pos < buf.count else { throw syntaxError("unterminated escape") }
        switch buf[pos] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
             UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            pos &+= 1
        case UInt8(ascii: "u"):
            pos &+= 1
            let unit = try hex4()
            if unit >= 0xDC00 && unit <= 0xDFFF { throw syntaxError("lone low surrogate in \\u escape") }
            if unit >= 0xD800 && unit <= 0xDBFF {
                // A high surrogate must be followed by an escaped low surrogate; a lone
                // one cannot be represented in UTF-8.
                guard pos &+ 1 < buf.count, buf[pos] == UInt8(ascii: "\\"), buf[pos &+ 1] == UInt8(ascii: "u") else {
                    throw syntaxError("lone high surrogate in \\u escape")
                }
                pos &+= 2
                let low = try hex4()
                guard low >= 0xDC00 && low <= 0xDFFF else { throw syntaxError("invalid low surrogate in \\u escape") }
            }
        default:
            throw syntaxError("invalid escape")
        }
    }

    private mutating func hex4() throws(BadInput) -> UInt32 {
        guard pos &+ 4 <= buf.count else { throw syntaxError("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = buf[pos]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b &- UInt8(ascii: "A") &+ 10
            default: throw syntaxError("invalid hex digit in \\u escape")
            }
            v = v &* 16 &+ UInt32(d)
            pos &+= 1
        }
        return v
    }

    /// Materializes a scanned string (unescaping when needed).
    func string(_ t: JSONStringToken) -> String {
        let raw = UnsafeRawBufferPointer(rebasing: buf[t.start..<t.end])
        if !t.hasEscapes { return String(decoding: raw, as: UTF8.self) }
        return JSONUnescape.unescape(raw)
    }

    /// True when the (escape-free) token's bytes equal `literal`.
    @inline(__always)
    func tokenEquals(_ t: JSONStringToken, _ literal: StaticString) -> Bool {
        let len = t.end &- t.start
        guard len == literal.utf8CodeUnitCount else { return false }
        let p = literal.utf8Start
        var i = 0
        while i < len {
            if buf[t.start &+ i] != p[i] { return false }
            i &+= 1
        }
        return true
    }

    // MARK: numbers and literals

    /// Scans a number per RFC 8259 grammar starting at `pos`.
    mutating func scanNumber() throws(BadInput) -> JSONNumberToken {
        let start = pos
        var negative = false
        if peek() == UInt8(ascii: "-") { negative = true; pos &+= 1 }
        guard let first = peek(), isDigit(first) else { throw syntaxError("expected digit") }
        if first == UInt8(ascii: "0") {
            pos &+= 1
        } else {
            while let b = peek(), isDigit(b) { pos &+= 1 }
        }
        let intEnd = pos
        var zeroFraction = false
        var nonInteger = false
        if peek() == UInt8(ascii: ".") {
            pos &+= 1
            guard let b = peek(), isDigit(b) else { throw syntaxError("expected digit after '.'") }
            zeroFraction = true
            while let b = peek(), isDigit(b) {
                if b != UInt8(ascii: "0") { zeroFraction = false; nonInteger = true }
                pos &+= 1
            }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            pos &+= 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { pos &+= 1 }
            guard let b = peek(), isDigit(b) else { throw syntaxError("expected exponent digit") }
            while let b = peek(), isDigit(b) { pos &+= 1 }
            nonInteger = true
            zeroFraction = false
        }
        return JSONNumberToken(start: start, end: pos, negative: negative, intEnd: intEnd,
                               hasZeroFraction: zeroFraction, isNonInteger: nonInteger)
    }

    /// The common number in an event (`ts`, a position) read in one pass:
    /// 1 to 18 digits without sign, fraction or exponent, first digit not 0,
    /// or a lone 0 (the first of an impression's positions), so it fits in
    /// Int64. Returns nil with `pos` unchanged for any other token, which
    /// then takes the general path (`scanNumber`, `int64`); both read the
    /// same value from the tokens this one accepts.
    @inline(__always)
    mutating func scanPlainInteger() -> Int64? {
        let n = buf.count
        var i = pos
        guard i < n else { return nil }
        let first = buf[i] &- UInt8(ascii: "0")
        guard first < 10 else { return nil }
        var v = Int64(first)
        i &+= 1
        // After a leading 0 no digit may follow (checked below).
        let limit = first == 0 ? i : min(n, pos &+ 18)
        while i < limit {
            let d = buf[i] &- UInt8(ascii: "0")
            guard d < 10 else { break }
            v = v &* 10 &+ Int64(d)
            i &+= 1
        }
        if i < n {
            let next = buf[i]
            // A 19th digit, a fraction or an exponent: the general path.
            if isDigit(next) || next == UInt8(ascii: ".") || next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
                return nil
            }
        }
        pos = i
        return v
    }

    /// The integer value of an integral token, or nil when it does not fit in Int64.
    func int64(_ t: JSONNumberToken) -> Int64? {
        var i = t.negative ? t.start &+ 1 : t.start
        var v: Int64 = 0
        while i < t.intEnd {
            let d = Int64(buf[i] &- UInt8(ascii: "0"))
            // Accumulate negatively so Int64.min parses.
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.subtractingReportingOverflow(d)
            if o1 || o2 { return nil }
            v = s
            i &+= 1
        }
        if t.negative { return v }
        let (r, o) = Int64(0).subtractingReportingOverflow(v)
        return o ? nil : r
    }

    /// What a number token is worth as an integer, by its value, not its
    /// spelling: `1000`, `1000.0`, `1e3`, `1.5e3` and `15000e-1` are all the
    /// integer 1000 or 1500 (JSON numbers have no integer type; a producer
    /// that writes floats may write exponents), `1.5` and `15e-1` are not
    /// integers. Decimal and exact (no binary floating point), whatever the
    /// number of digits or the exponent's size.
    enum IntegerValue: Equatable {
        case integer(Int64)
        /// A value with a non-zero fractional part.
        case fractional
        /// An integer outside Int64.
        case outOfRange
    }

    func integerValue(_ t: JSONNumberToken) -> IntegerValue {
        // The significant digits (integer, then fraction part) and the power of ten after them.
        var digits: [UInt8] = []
        var i = t.negative ? t.start &+ 1 : t.start
        while i < t.intEnd { digits.append(buf[i] &- UInt8(ascii: "0")); i &+= 1 }
        var exponent = 0
        if i < t.end && buf[i] == UInt8(ascii: ".") {
            i &+= 1
            while i < t.end && isDigit(buf[i]) { digits.append(buf[i] &- UInt8(ascii: "0")); exponent -= 1; i &+= 1 }
        }
        if i < t.end {  // 'e' or 'E'
            i &+= 1
            var negativeExponent = false
            if buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-") { negativeExponent = buf[i] == UInt8(ascii: "-"); i &+= 1 }
            var e = 0
            while i < t.end {
                // Past any digit count a value can have: saturate (the verdict no longer changes).
                if e < 1_000_000 { e = e * 10 + Int(buf[i] &- UInt8(ascii: "0")) }
                i &+= 1
            }
            exponent += negativeExponent ? -e : e
        }
        guard let firstNonZero = digits.firstIndex(where: { $0 != 0 }) else { return .integer(0) }
        var last = digits.count - 1
        while digits[last] == 0 { last -= 1; exponent += 1 }
        let significant = digits[firstNonZero...last]
        guard exponent >= 0 else { return .fractional }
        guard significant.count + exponent <= 19 else { return .outOfRange }
        // Accumulated negatively, as `int64`, so Int64.min is reachable.
        var v: Int64 = 0
        for d in significant {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.subtractingReportingOverflow(Int64(d))
            if o1 || o2 { return .outOfRange }
            v = s
        }
        for _ in 0..<exponent {
            let (m, o) = v.multipliedReportingOverflow(by: 10)
            if o { return .outOfRange }
            v = m
        }
        if t.negative { return .integer(v) }
        let (r, o) = Int64(0).subtractingReportingOverflow(v)
        return o ? .outOfRange : .integer(r)
    }

    /// The decimal text of an integral token's integer part (used for integer ids).
    func integerText(_ t: JSONNumberToken) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: buf[t.start..<t.intEnd]), as: UTF8.self)
    }

    /// Consumes `true`, `false` or `null` (the first byte is at `pos`).
    mutating func scanLiteral() throws(BadInput) {
        let lit: StaticString
        switch peek() ?? 0 {
        case UInt8(ascii: "t"): lit = "true"
        case UInt8(ascii: "f"): lit = "false"
        case UInt8(ascii: "n"): lit = "null"
        default: throw syntaxError("expected value")
        }
        let len = lit.utf8CodeUnitCount
        guard pos &+ len <= buf.count else { throw syntaxError("truncated literal") }
        let p = lit.utf8Start
        for i in 0..<len where buf[pos &+ i] != p[i] { throw syntaxError("invalid literal") }
        pos &+= len
    }

    /// True when the next bytes are `null` (consumed) — for "null means absent".
    mutating func consumeNull() throws(BadInput) -> Bool {
        guard peek() == UInt8(ascii: "n") else { return false }
        try scanLiteral()
        return true
    }

    /// Skips any JSON value at `pos` (after whitespace), validating its syntax.
    ///
    /// Iterative, so the nesting depth costs one bit of heap per level, never
    /// stack: values nested up to `maxDepth` containers deep are accepted,
    /// deeper ones are rejected as `nestingTooDeep` (valid JSON, refused).
    /// `depth` is the number of containers already open around the value
    /// (1 for a member of the top-level object).
    mutating func skipValue(depth: Int = 1) throws(BadInput) {
        // One bit per open container: 1 = object, 0 = array.
        var kinds: [UInt64] = []
        var open = 0
        while true {
            // A value is expected here.
            skipWhitespace()
            guard let b = peek() else { throw syntaxError("expected value") }
            var closedAll = false
            switch b {
            case UInt8(ascii: "\""):
                _ = try scanString()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                _ = try scanNumber()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let isObject = b == UInt8(ascii: "{")
                guard depth &+ open < Self.maxDepth else {
                    throw BadInput(.nestingTooDeep, "JSON nested deeper than \(Self.maxDepth) levels at offset \(pos)")
                }
                pos &+= 1
                skipWhitespace()
                if peek() == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    pos &+= 1
                } else {
                    if open & 63 == 0 { kinds.append(0) }
                    if isObject { kinds[open >> 6] |= 1 << UInt64(open & 63) }
                    else { kinds[open >> 6] &= ~(1 << UInt64(open & 63)) }
                    open &+= 1
                    if isObject {
                        _ = try scanString()
                        try expect(UInt8(ascii: ":"), "':'")
                    }
                    continue
                }
            default:
                try scanLiteral()
            }
            // After a value: close containers or move to the next member.
            while open > 0 {
                let top = open &- 1
                let inObject = kinds[top >> 6] & (1 << UInt64(top & 63)) != 0
                skipWhitespace()
                guard let c = peek() else { throw syntaxError(inObject ? "unterminated object" : "unterminated array") }
                pos &+= 1
                if c == (inObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    open = top
                    continue
                }
                guard c == UInt8(ascii: ",") else {
                    pos &-= 1
                    throw syntaxError(inObject ? "expected ',' or '}'" : "expected ',' or ']'")
                }
                if inObject {
                    skipWhitespace()
                    _ = try scanString()
                    try expect(UInt8(ascii: ":"), "':'")
                }
                break
            }
            if open == 0 { closedAll = true }
            if closedAll { return }
        }
    }
}

@inline(__always)
func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

/// RFC 8259's insignificant whitespace: space, tab, line feed, carriage return.
@inline(__always)
func isJSONWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }
