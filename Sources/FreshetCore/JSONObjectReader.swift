/// The fields the event decoders look for; everything else is skipped.
enum EventField {
    case userId, itemId, action, dwellMs, ts, requestId, itemsShown, positions

    static func from(name: String) -> EventField? {
        switch name {
        case "user_id": .userId
        case "item_id": .itemId
        case "action": .action
        case "dwell_ms": .dwellMs
        case "ts": .ts
        case "request_id": .requestId
        case "items_shown": .itemsShown
        case "positions": .positions
        default: nil
        }
    }
}

extension JSONScanner {
    /// Validates UTF-8 and positions the scanner just inside the top-level object.
    /// Non-object JSON values are `notAnObject`, everything unparsable is `malformedJSON`.
    static func openObject(_ bytes: UnsafeRawBufferPointer) throws(BadInput) -> JSONScanner {
        if let bad = UTF8Validation.firstInvalidOffset(bytes) {
            throw BadInput(.invalidUTF8, "invalid UTF-8 at byte offset \(bad)")
        }
        var s = JSONScanner(bytes)
        s.skipWhitespace()
        guard let first = s.peek() else { throw BadInput(.malformedJSON, "empty message") }
        if first != UInt8(ascii: "{") {
            try s.skipValue(depth: 0)
            try s.finish()
            throw BadInput(.notAnObject, "top-level JSON value is not an object")
        }
        s.pos &+= 1
        return s
    }

    /// Requires that only whitespace follows the top-level value.
    func finish() throws(BadInput) {
        var s = self
        s.skipWhitespace()
        guard s.atEnd else { throw s.syntaxError("trailing data after JSON value") }
    }

    /// Moves to the next member of the current object and returns its key, or nil
    /// after consuming the closing brace. `first` tracks whether a comma is needed.
    mutating func nextKey(first: inout Bool) throws(BadInput) -> JSONStringToken? {
        skipWhitespace()
        if first {
            first = false
            if peek() == UInt8(ascii: "}") { pos &+= 1; return nil }
        } else {
            guard let c = peek() else { throw syntaxError("unterminated object") }
            if c == UInt8(ascii: "}") { pos &+= 1; return nil }
            guard c == UInt8(ascii: ",") else { throw syntaxError("expected ',' or '}'") }
            pos &+= 1
            skipWhitespace()
        }
        let key = try scanString()
        try expect(UInt8(ascii: ":"), "':'")
        skipWhitespace()
        return key
    }

    /// Identifies a key without allocating when it has no escapes.
    func field(_ key: JSONStringToken) -> EventField? {
        if key.hasEscapes { return EventField.from(name: string(key)) }
        switch key.end &- key.start {
        case 2: return tokenEquals(key, "ts") ? .ts : nil
        case 6: return tokenEquals(key, "action") ? .action : nil
        case 7:
            if tokenEquals(key, "user_id") { return .userId }
            return tokenEquals(key, "item_id") ? .itemId : nil
        case 8: return tokenEquals(key, "dwell_ms") ? .dwellMs : nil
        case 9: return tokenEquals(key, "positions") ? .positions : nil
        case 10: return tokenEquals(key, "request_id") ? .requestId : nil
        case 11: return tokenEquals(key, "items_shown") ? .itemsShown : nil
        default: return nil
        }
    }
}
