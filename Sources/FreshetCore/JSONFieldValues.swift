/// Where an id's bytes lie in the scanned input: a string's content or an
/// integer's decimal text (sign included), in place. `escaped` when the
/// string content has backslash escapes, which must be resolved first.
@usableFromInline
struct JSONIdToken {
    @usableFromInline var start: Int
    @usableFromInline var end: Int
    @usableFromInline var escaped: Bool
}

/// Typed field readers used by `EventDecoder`.
///
/// Syntax errors are thrown at once (the message is not JSON). Semantic errors
/// (wrong type, bad value) are recorded in `problem` — only the first one — and the
/// value is skipped, so a message that is also syntactically broken is reported as
/// `malformedJSON`, whatever its fields look like.
extension JSONScanner {
    @inline(__always)
    static func note(_ e: @autoclosure () -> BadInput, _ problem: inout BadInput?) {
        if problem == nil { problem = e() }
    }

    /// An id: a non-empty string, or an integer (kept as its decimal text). `null` -> nil.
    mutating func readId(_ name: StaticString, _ problem: inout BadInput?) throws(BadInput) -> String? {
        try readIdToken(name, &problem).map(idString)
    }

    /// `readId` without building the `String`: where the id's bytes lie in
    /// the input (same acceptance, same problems noted).
    ///
    /// The usual id, a string, is read inline, in the caller (each id field,
    /// each shown item); integers, `null` and wrong types through a call.
    @inline(__always)
    mutating func readIdToken(_ name: StaticString, _ problem: inout BadInput?) throws(BadInput) -> JSONIdToken? {
        if peek() == UInt8(ascii: "\"") { return try readStringIdToken(name, &problem) }
        return try readNonStringIdToken(name, &problem)
    }

    /// `readIdToken` for anything but a string.
    @inline(never)
    mutating func readNonStringIdToken(_ name: StaticString, _ problem: inout BadInput?) throws(BadInput) -> JSONIdToken? {
        switch peek() ?? 0 {
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let t = try scanNumber()
            if t.isNonInteger || t.hasZeroFraction {
                Self.note(BadInput(.wrongType, "field '\(name)' must be a string or an integer"), &problem)
                return nil
            }
            // The integer's decimal text, as written (sign included), except
            // that -0 is the integer 0, whose text is "0" (it was a user of
            // its own, apart from 0: a user's finding).
            let negativeZero = t.negative && t.intEnd == t.start &+ 2 && buf[t.start &+ 1] == UInt8(ascii: "0")
            return JSONIdToken(start: negativeZero ? t.start &+ 1 : t.start, end: t.intEnd, escaped: false)
        case UInt8(ascii: "n"):
            if try consumeNull() { return nil }
            fallthrough
        default:
            try skipValue()
            Self.note(BadInput(.wrongType, "field '\(name)' must be a string or an integer"), &problem)
            return nil
        }
    }

    /// `readIdToken` for an id written as a string (`pos` at its quote).
    @inline(__always)
    mutating func readStringIdToken(_ name: StaticString, _ problem: inout BadInput?) throws(BadInput) -> JSONIdToken {
        let t = try scanString()
        if t.end == t.start { Self.note(BadInput(.invalidField, "field '\(name)' is an empty string"), &problem) }
        return JSONIdToken(start: t.start, end: t.end, escaped: t.hasEscapes)
    }

    /// The `String` of an id token (escapes resolved).
    func idString(_ t: JSONIdToken) -> String {
        let raw = UnsafeRawBufferPointer(rebasing: buf[t.start..<t.end])
        return t.escaped ? JSONUnescape.unescape(raw) : String(decoding: raw, as: UTF8.self)
    }

    /// An integer, by value: any JSON number whose value is an integer
    /// (`1000`, `1000.0`, `1e3`; `integerValue`). `null` -> nil. A value with
    /// a fraction is `wrong_type`; out-of-range values are reported with
    /// `rangeReason`. (Until the eighteenth session an exponent made any
    /// number `wrong_type`, while `1000.0` was read as 1000.)
    ///
    /// A plain integer (`scanPlainInteger`: `ts`, a position) is read
    /// inline, in the caller; any other value through a call.
    @inline(__always)
    mutating func readInt(_ name: StaticString, rangeReason: BadInput.Reason,
                          _ problem: inout BadInput?) throws(BadInput) -> Int64? {
        if let v = scanPlainInteger() { return v }
        return try readNonPlainInt(name, rangeReason: rangeReason, &problem)
    }

    /// `readInt` for anything but a plain integer.
    @inline(never)
    mutating func readNonPlainInt(_ name: StaticString, rangeReason: BadInput.Reason,
                                  _ problem: inout BadInput?) throws(BadInput) -> Int64? {
        switch peek() ?? 0 {
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let t = try scanNumber()
            let value: IntegerValue
            if !t.isNonInteger {
                value = int64(t).map { .integer($0) } ?? .outOfRange
            } else {
                value = integerValue(t)
            }
            switch value {
            case .integer(let v):
                return v
            case .fractional:
                Self.note(BadInput(.wrongType, "field '\(name)' must be an integer"), &problem)
                return nil
            case .outOfRange:
                Self.note(BadInput(rangeReason, "field '\(name)' does not fit in 64 bits"), &problem)
                return nil
            }
        case UInt8(ascii: "n"):
            if try consumeNull() { return nil }
            fallthrough
        default:
            try skipValue()
            Self.note(BadInput(.wrongType, "field '\(name)' must be an integer"), &problem)
            return nil
        }
    }

    /// The `action` string, matched without allocating. `null` -> nil.
    ///
    /// An action as events write it is read inline, in the decoder
    /// (`scanKnownAction`); any other value through a call.
    @inline(__always)
    mutating func readAction(_ problem: inout BadInput?) throws(BadInput) -> Action? {
        if let action = scanKnownAction() { return action }
        return try readOtherAction(&problem)
    }

    /// An action's name in quotes (`"click"`, no escapes), recognised from
    /// one word load instead of a string scan and up to five byte-by-byte
    /// comparisons (~100 instructions an interaction, callgrind): such bytes
    /// are a string token without escapes, so the action and the position
    /// after the closing quote are what `readOtherAction` would give. nil,
    /// with `pos` unchanged, for anything else (and within the input's last
    /// 7 bytes).
    @inline(__always)
    mutating func scanKnownAction() -> Action? {
        guard pos &+ 8 <= buf.count else { return nil }
        let w = UInt64(littleEndian: buf.loadUnaligned(fromByteOffset: pos, as: UInt64.self))
        let action: Action
        let length: Int
        switch w & Self.lowBytes(7) {
        case Self.keyWord("\"click\""): (action, length) = (.click, 7)
        case Self.keyWord("\"watch\""): (action, length) = (.watch, 7)
        case Self.keyWord("\"share\""): (action, length) = (.share, 7)
        default:
            switch w & Self.lowBytes(6) {
            case Self.keyWord("\"like\""): (action, length) = (.like, 6)
            case Self.keyWord("\"skip\""): (action, length) = (.skip, 6)
            default: return nil
            }
        }
        pos &+= length
        return action
    }

    /// `readAction` for anything but an action `scanKnownAction` reads.
    @inline(never)
    mutating func readOtherAction(_ problem: inout BadInput?) throws(BadInput) -> Action? {
        switch peek() ?? 0 {
        case UInt8(ascii: "\""):
            let t = try scanString()
            if !t.hasEscapes {
                if tokenEquals(t, "click") { return .click }
                if tokenEquals(t, "watch") { return .watch }
                if tokenEquals(t, "like") { return .like }
                if tokenEquals(t, "share") { return .share }
                if tokenEquals(t, "skip") { return .skip }
            }
            let value = string(t)
            if let a = Action(name: value) { return a }
            Self.note(BadInput(.unknownAction, "field 'action' has unknown value '\(value.prefix(64))'"), &problem)
            return nil
        case UInt8(ascii: "n"):
            if try consumeNull() { return nil }
            fallthrough
        default:
            try skipValue()
            Self.note(BadInput(.wrongType, "field 'action' must be a string"), &problem)
            return nil
        }
    }

    /// `items_shown`: an array of ids, as tokens appended to `out` (emptied
    /// first, so a repeated key's last occurrence wins). Returns false for
    /// `null` and for a value that is not an array (noted in `problem`).
    mutating func readIdTokenArray(_ name: StaticString, _ problem: inout BadInput?,
                                   into out: inout [JSONIdToken]) throws(BadInput) -> Bool {
        out.removeAll(keepingCapacity: true)
        if try consumeNull() { return false }
        guard peek() == UInt8(ascii: "[") else {
            try skipValue()
            Self.note(BadInput(.wrongType, "field '\(name)' must be an array of ids"), &problem)
            return false
        }
        pos &+= 1
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { pos &+= 1; return true }
        while true {
            skipWhitespace()
            if let id = try readIdToken(name, &problem) {
                out.append(id)
            } else {
                Self.note(BadInput(.wrongType, "field '\(name)' contains a null element"), &problem)
            }
            skipWhitespace()
            guard let c = peek() else { throw syntaxError("unterminated array") }
            pos &+= 1
            if c == UInt8(ascii: "]") { return true }
            guard c == UInt8(ascii: ",") else { pos &-= 1; throw syntaxError("expected ',' or ']'") }
        }
    }

    /// `positions`: an array of integers in Int32 range, appended to `out`
    /// (emptied first). Returns false for `null` and for a value that is not
    /// an array (noted in `problem`).
    mutating func readInt32Array(_ name: StaticString, _ problem: inout BadInput?,
                                 into out: inout [Int32]) throws(BadInput) -> Bool {
        out.removeAll(keepingCapacity: true)
        if try consumeNull() { return false }
        guard peek() == UInt8(ascii: "[") else {
            try skipValue()
            Self.note(BadInput(.wrongType, "field '\(name)' must be an array of integers"), &problem)
            return false
        }
        pos &+= 1
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { pos &+= 1; return true }
        while true {
            skipWhitespace()
            if let v = try readInt(name, rangeReason: .invalidField, &problem) {
                if let v32 = Int32(exactly: v) {
                    out.append(v32)
                } else {
                    Self.note(BadInput(.invalidField, "field '\(name)' has a value outside 32-bit range"), &problem)
                }
            } else {
                Self.note(BadInput(.wrongType, "field '\(name)' contains a null element"), &problem)
            }
            skipWhitespace()
            guard let c = peek() else { throw syntaxError("unterminated array") }
            pos &+= 1
            if c == UInt8(ascii: "]") { return true }
            guard c == UInt8(ascii: ",") else { pos &-= 1; throw syntaxError("expected ',' or ']'") }
        }
    }

    /// `request_id`: a string or an integer; empty strings are allowed here since it is
    /// never a Redis key. `null` -> nil.
    mutating func readOptionalText(_ name: StaticString, _ problem: inout BadInput?) throws(BadInput) -> String? {
        try readOptionalTextToken(name, &problem).map(idString)
    }

    /// `readOptionalText` without building the `String`.
    @inline(__always)
    mutating func readOptionalTextToken(_ name: StaticString, _ problem: inout BadInput?) throws(BadInput) -> JSONIdToken? {
        if peek() == UInt8(ascii: "\"") {
            let t = try scanString()
            return JSONIdToken(start: t.start, end: t.end, escaped: t.hasEscapes)
        }
        // What `readIdToken` does with anything but a string.
        return try readNonStringIdToken(name, &problem)
    }
}
