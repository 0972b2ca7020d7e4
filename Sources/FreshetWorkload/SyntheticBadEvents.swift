import FreshetCore

extension SyntheticStream {
    /// The kinds of bad input a synthetic stream mixes in, in turn. Null values
    /// (not JSON bytes) and records too large to repartition (megabytes) are
    /// exercised by dedicated tests instead; the list is fixed so a seed keeps
    /// giving the same stream.
    static let badReasons: [BadInput.Reason] = [
        .invalidUTF8, .malformedJSON, .notAnObject, .missingField, .wrongType, .unknownAction,
        .timestampOutOfRange, .invalidField,
    ]

    /// A bad `interactions` message that a decoder must reject with `reason`.
    mutating func badEvent(_ reason: BadInput.Reason, user: String, ts: EventTimeMs) -> SyntheticEvent {
        let item = "i\(itemRank())"
        var good = Interaction(userId: user, itemId: item, action: .click, dwellMs: nil, ts: ts, requestId: nil)
        var json: [UInt8]
        switch reason {
        case .invalidUTF8:
            json = EventJSON.interaction(good, integerIds: false)
            // Replace the item id's first byte (after "item_id":") with a byte never valid in UTF-8.
            let marker = Array("\"item_id\":\"".utf8)
            if let at = Self.find(marker, in: json) { json[at + marker.count] = 0xFF }
        case .malformedJSON:
            json = Array(EventJSON.interaction(good, integerIds: false).dropLast(3))
        case .notAnObject:
            json = [UInt8(ascii: "[")] + EventJSON.interaction(good, integerIds: false) + [UInt8(ascii: "]")]
        case .missingField:
            var w = SyntheticJSONWriter(capacity: 96)
            w.raw("{\"user_id\":")
            w.string(user)
            w.raw(",\"action\":\"click\",\"ts\":")
            w.int(ts)
            w.byte(UInt8(ascii: "}"))
            json = w.bytes
        case .wrongType:
            var w = SyntheticJSONWriter(capacity: 96)
            w.raw("{\"user_id\":true,\"item_id\":")
            w.string(item)
            w.raw(",\"action\":\"click\",\"ts\":")
            w.int(ts)
            w.byte(UInt8(ascii: "}"))
            json = w.bytes
        case .unknownAction:
            json = EventJSON.interaction(good, integerIds: false)
            let marker = Array("\"click\"".utf8)
            if let at = Self.find(marker, in: json) { json.replaceSubrange(at..<(at + marker.count), with: Array("\"buy\"".utf8)) }
        case .timestampOutOfRange:
            // Alternately mid-1999 and two days past the consumer's clock.
            good.ts = badCounter % 2 == 0 ? 928_195_200_000 : config.nowMs + 2 * 86_400_000
            json = EventJSON.interaction(good, integerIds: false)
        case .invalidField:
            good.dwellMs = -5
            json = EventJSON.interaction(good, integerIds: false)
        case .nestingTooDeep:
            // A valid event plus an unknown field nested one level too deep.
            json = Array(EventJSON.interaction(good, integerIds: false).dropLast())
            let levels = EventDecoder.maxNestingDepth // the event object is the first level
            json += Array(",\"extra\":".utf8) + Array(repeating: UInt8(ascii: "["), count: levels)
                + Array(repeating: UInt8(ascii: "]"), count: levels) + [UInt8(ascii: "}")]
        case .nullValue, .recordTooLarge:
            preconditionFailure("\(reason) is not among SyntheticStream.badReasons")
        }
        return SyntheticEvent(topic: .interactions, key: user, json: json, timestampMs: ts,
                              expected: .bad(reason: reason))
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }
}
