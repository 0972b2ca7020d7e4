/// The fields the event decoders look for; everything else is skipped.
enum EventField {
    case userId, itemId, action, dwellMs, ts, requestId, itemsShown, positions
    /// Any other key: its value is skipped.
    case other

    static func from(name: String) -> EventField {
        switch name {
        case "user_id": .userId
        case "item_id": .itemId
        case "action": .action
        case "dwell_ms": .dwellMs
        case "ts": .ts
        case "request_id": .requestId
        case "items_shown": .itemsShown
        case "positions": .positions
        default: .other
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

    /// Moves to the next member of the current object and returns its key's
    /// field, or nil after consuming the closing brace; `pos` is then at the
    /// member's value. `first` tracks whether a comma is needed.
    ///
    /// The usual member takes a short path: its comma (none before the
    /// first member) right after the previous value, then a key as events
    /// spell it (`scanKnownKey`); no whitespace loops, brace or error
    /// branches, and a frame that saves no registers (49 instructions a
    /// member instead of 82, callgrind). Anything else goes, from the same
    /// position, through `nextMember`, which reads every member this path
    /// would and gives the same field and position for those. So does the
    /// usual end, the closing brace right after the last value (what
    /// `nextMember` does with it, without its call: ~40 instructions an
    /// event, callgrind).
    mutating func nextField(first: inout Bool) throws(BadInput) -> EventField? {
        let start = pos
        if first || (pos < buf.count && buf[pos] == UInt8(ascii: ",")) {
            if !first { pos &+= 1 }
            if let known = scanKnownKey() {
                first = false
                skipWhitespace()
                return known
            }
            pos = start
        } else if pos < buf.count && buf[pos] == UInt8(ascii: "}") {
            pos &+= 1
            return nil
        }
        return try nextMember(first: &first)
    }

    /// `nextField` in general: any whitespace, key spelling or error.
    @inline(never)
    mutating func nextMember(first: inout Bool) throws(BadInput) -> EventField? {
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
        let field: EventField
        if let known = scanKnownKey() {
            field = known
        } else {
            field = self.field(try scanString())
            try expect(UInt8(ascii: ":"), "':'")
        }
        skipWhitespace()
        return field
    }

    /// A field's key as events spell it, quotes and colon included
    /// (`"user_id":`, as our generators and the producers we know write
    /// it), recognised from two word loads: the key's scan, its comparison
    /// and the colon cost ~150 instructions a member before (callgrind),
    /// ~40% of an interaction's decoding. Such bytes are a string token
    /// without escapes followed by its colon, so the field and the position
    /// after the colon are what `scanString`, `field` and `expect` would
    /// give. Anything else (other keys, escapes, whitespace before the
    /// colon, a key within the input's last 15 bytes) returns nil with
    /// `pos` unchanged, for that general path.
    @inline(__always)
    mutating func scanKnownKey() -> EventField? {
        guard pos &+ 16 <= buf.count else { return nil }
        let w0 = UInt64(littleEndian: buf.loadUnaligned(fromByteOffset: pos, as: UInt64.self))
        let w1 = UInt64(littleEndian: buf.loadUnaligned(fromByteOffset: pos &+ 8, as: UInt64.self))
        // The first word names the key (its first seven bytes), the second
        // holds the rest of it and the colon; "ts" fits in the first.
        switch w0 {
        case Self.keyWord("\"user_id\":"): return take("\"user_id\":", .userId, ifTailIs: w1)
        case Self.keyWord("\"item_id\":"): return take("\"item_id\":", .itemId, ifTailIs: w1)
        case Self.keyWord("\"action\":"): return take("\"action\":", .action, ifTailIs: w1)
        case Self.keyWord("\"dwell_ms\":"): return take("\"dwell_ms\":", .dwellMs, ifTailIs: w1)
        case Self.keyWord("\"request_id\":"): return take("\"request_id\":", .requestId, ifTailIs: w1)
        case Self.keyWord("\"items_shown\":"): return take("\"items_shown\":", .itemsShown, ifTailIs: w1)
        case Self.keyWord("\"positions\":"): return take("\"positions\":", .positions, ifTailIs: w1)
        default:
            guard w0 & Self.lowBytes(5) == Self.keyWord("\"ts\":") else { return nil }
            pos &+= 5
            return .ts
        }
    }

    /// `field` with `pos` moved past `spelled` when the word after its first
    /// eight bytes starts with the rest of it; nil otherwise.
    @inline(__always)
    private mutating func take(_ spelled: StaticString, _ field: EventField, ifTailIs w1: UInt64) -> EventField? {
        let length = spelled.utf8CodeUnitCount
        guard w1 & Self.lowBytes(length &- 8) == Self.word(spelled, from: 8) else { return nil }
        pos &+= length
        return field
    }

    /// The first eight bytes of `spelled` (all of it when shorter) as a
    /// little-endian word, as `scanKnownKey` and `scanKnownAction` load them.
    @inline(__always)
    static func keyWord(_ spelled: StaticString) -> UInt64 {
        word(spelled, from: 0)
    }

    /// Up to eight bytes of `spelled` from `start`, as a little-endian word.
    @inline(__always)
    private static func word(_ spelled: StaticString, from start: Int) -> UInt64 {
        let p = spelled.utf8Start
        var w: UInt64 = 0
        var i = start
        while i < min(spelled.utf8CodeUnitCount, start &+ 8) {
            w |= UInt64(p[i]) << UInt64((i &- start) &* 8)
            i &+= 1
        }
        return w
    }

    /// A mask of a word's lowest `count` bytes (1...7).
    @inline(__always)
    static func lowBytes(_ count: Int) -> UInt64 {
        (1 << UInt64(count &* 8)) &- 1
    }

    /// Identifies a key without allocating when it has no escapes.
    func field(_ key: JSONStringToken) -> EventField {
        if key.hasEscapes { return EventField.from(name: string(key)) }
        switch key.end &- key.start {
        case 2: return tokenEquals(key, "ts") ? .ts : .other
        case 6: return tokenEquals(key, "action") ? .action : .other
        case 7:
            if tokenEquals(key, "user_id") { return .userId }
            return tokenEquals(key, "item_id") ? .itemId : .other
        case 8: return tokenEquals(key, "dwell_ms") ? .dwellMs : .other
        case 9: return tokenEquals(key, "positions") ? .positions : .other
        case 10: return tokenEquals(key, "request_id") ? .requestId : .other
        case 11: return tokenEquals(key, "items_shown") ? .itemsShown : .other
        default: return .other
        }
    }
}
