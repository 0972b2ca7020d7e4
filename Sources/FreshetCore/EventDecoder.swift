/// Decodes and validates the JSON events of the `interactions` and `impressions`
/// topics straight from raw UTF-8 bytes (no Foundation, no intermediate tree).
///
/// Contract (DESIGN.md "Input events"):
/// - all bytes must be valid UTF-8 and form exactly one JSON value, a top-level object;
/// - ids are non-empty strings or integers (integers become their decimal text);
/// - unknown fields are skipped (syntax still checked); `null` means "absent";
/// - `ts` falls back to the Kafka message timestamp; the resolved time must lie in
///   `[minTimestampMs, nowMs + maxFutureSkewMs]`.
/// Every rejection is a `BadInput` with a stable reason and a detail naming the field.
package struct EventDecoder: Sendable {
    /// The deepest nesting of containers (the event object included) accepted
    /// in an event; deeper valid JSON is bad input `nesting_too_deep`.
    package static let maxNestingDepth = JSONScanner.maxDepth

    /// Earliest accepted event time (default 2000-01-01T00:00:00Z).
    package var minTimestampMs: EventTimeMs
    /// How far past the caller's wall clock an event time may lie (default one day).
    package var maxFutureSkewMs: Int64

    package init(minTimestampMs: EventTimeMs = 946_684_800_000, maxFutureSkewMs: Int64 = 86_400_000) {
        self.minTimestampMs = minTimestampMs
        self.maxFutureSkewMs = maxFutureSkewMs
    }

    /// Decodes an `interactions` event.
    package func decodeInteraction(_ bytes: UnsafeRawBufferPointer, messageTimestampMs: EventTimeMs?,
                                  nowMs: EventTimeMs) throws(BadInput) -> Interaction {
        var event = DecodedEvent()
        try decode(interaction: bytes, messageTimestampMs: messageTimestampMs, nowMs: nowMs, into: &event)
        var result: Interaction?
        event.withIds(in: bytes) { ids in
            result = Interaction(userId: EventIds.string(ids.user), itemId: EventIds.string(ids.item),
                                 action: event.action, dwellMs: event.dwellMs, ts: event.ts,
                                 requestId: ids.requestId.map(EventIds.string))
        }
        // withIds always calls its body.
        return result!
    }

    /// Decodes an `impressions` event.
    package func decodeImpression(_ bytes: UnsafeRawBufferPointer, messageTimestampMs: EventTimeMs?,
                                 nowMs: EventTimeMs) throws(BadInput) -> Impression {
        var event = DecodedEvent()
        try decode(impression: bytes, messageTimestampMs: messageTimestampMs, nowMs: nowMs, into: &event)
        var result: Impression?
        event.withIds(in: bytes) { ids in
            result = Impression(requestId: ids.requestId.map(EventIds.string), userId: EventIds.string(ids.user),
                                itemsShown: (0..<event.itemCount).map { EventIds.string(ids.shownItem($0)) },
                                positions: event.hasPositions ? event.positions : nil, ts: event.ts)
        }
        return result!
    }

    /// Decodes an `interactions` event into `event`, ids kept as bytes (the
    /// hot path of a source task: no `String`, no allocation once `event`'s
    /// buffers have grown). On a throw, `event` holds garbage.
    package func decode(interaction bytes: UnsafeRawBufferPointer, messageTimestampMs: EventTimeMs?,
                        nowMs: EventTimeMs, into event: inout DecodedEvent) throws(BadInput) {
        var s = try JSONScanner.openObject(bytes)
        var problem: BadInput?
        var userId: JSONIdToken?, itemId: JSONIdToken?, action: Action?
        var dwellMs: Int64?, ts: Int64?, requestId: JSONIdToken?
        var first = true
        while let field = try s.nextField(first: &first) {
            switch field {
            case .userId: userId = try s.readIdToken("user_id", &problem)
            case .itemId: itemId = try s.readIdToken("item_id", &problem)
            case .action: action = try s.readAction(&problem)
            case .dwellMs: dwellMs = try s.readInt("dwell_ms", rangeReason: .invalidField, &problem)
            case .ts: ts = try s.readInt("ts", rangeReason: .timestampOutOfRange, &problem)
            case .requestId: requestId = try s.readOptionalTextToken("request_id", &problem)
            case .itemsShown, .positions, .other: try s.skipValue()
            }
        }
        try s.finish()
        if let problem { throw problem }
        guard let userId else { throw BadInput(.missingField, "missing field 'user_id'") }
        guard let itemId else { throw BadInput(.missingField, "missing field 'item_id'") }
        guard let action else { throw BadInput(.missingField, "missing field 'action'") }
        if let d = dwellMs, d < 0 { throw BadInput(.invalidField, "field 'dwell_ms' is negative (\(d))") }
        let time = try resolveTimestamp(ts, messageTimestampMs: messageTimestampMs, nowMs: nowMs)
        event.kind = .interaction
        event.ts = time
        event.action = action
        event.dwellMs = dwellMs
        event.user = userId
        event.item = itemId
        event.hasRequestId = requestId != nil
        if let requestId { event.request = requestId }
        event.hasPositions = false
        // Emptied only when not empty: `removeAll(keepingCapacity:)` is a
        // call into the generic `replaceSubrange` (~65 instructions) even for
        // an empty array, and an interactions task's event never has items.
        if !event.items.isEmpty { event.items.removeAll(keepingCapacity: true) }
        if userId.escaped || itemId.escaped || requestId?.escaped == true { event.resolveEscapes(bytes) }
    }

    /// Decodes an `impressions` event into `event`, ids kept as bytes (see
    /// `decode(interaction:messageTimestampMs:nowMs:into:)`).
    package func decode(impression bytes: UnsafeRawBufferPointer, messageTimestampMs: EventTimeMs?,
                        nowMs: EventTimeMs, into event: inout DecodedEvent) throws(BadInput) {
        var s = try JSONScanner.openObject(bytes)
        var problem: BadInput?
        var userId: JSONIdToken?, hasItems = false, hasPositions = false
        var ts: Int64?, requestId: JSONIdToken?
        var first = true
        while let field = try s.nextField(first: &first) {
            switch field {
            case .userId: userId = try s.readIdToken("user_id", &problem)
            case .itemsShown: hasItems = try s.readIdTokenArray("items_shown", &problem, into: &event.items)
            case .positions: hasPositions = try s.readInt32Array("positions", &problem, into: &event.positions)
            case .ts: ts = try s.readInt("ts", rangeReason: .timestampOutOfRange, &problem)
            case .requestId: requestId = try s.readOptionalTextToken("request_id", &problem)
            case .itemId, .action, .dwellMs, .other: try s.skipValue()
            }
        }
        try s.finish()
        if let problem { throw problem }
        guard let userId else { throw BadInput(.missingField, "missing field 'user_id'") }
        guard hasItems else { throw BadInput(.missingField, "missing field 'items_shown'") }
        if hasPositions, event.positions.count != event.items.count {
            throw BadInput(.invalidField,
                           "field 'positions' has \(event.positions.count) entries but 'items_shown' has \(event.items.count)")
        }
        let time = try resolveTimestamp(ts, messageTimestampMs: messageTimestampMs, nowMs: nowMs)
        event.kind = .impression
        event.ts = time
        event.dwellMs = nil
        event.user = userId
        event.hasRequestId = requestId != nil
        if let requestId { event.request = requestId }
        event.hasPositions = hasPositions
        // As in `decode(interaction:)`: nothing to empty is the common case.
        if !hasPositions && !event.positions.isEmpty { event.positions.removeAll(keepingCapacity: true) }
        if userId.escaped || requestId?.escaped == true || event.items.contains(where: \.escaped) {
            event.resolveEscapes(bytes)
        } else if !event.unescaped.isEmpty {
            event.unescaped.removeAll(keepingCapacity: true)
        }
    }

    /// `ts` if present, else the message timestamp; then the plausibility range check.
    ///
    /// Inline, with the messages built out of line (`outOfRange`): as a
    /// call that made the name of the time's source (a `String`) for
    /// every event, it cost ~50 instructions an event (callgrind), ~8 now.
    @inline(__always)
    func resolveTimestamp(_ ts: EventTimeMs?, messageTimestampMs: EventTimeMs?,
                          nowMs: EventTimeMs) throws(BadInput) -> EventTimeMs {
        guard let t = ts ?? messageTimestampMs else { throw Self.noTimestamp() }
        let (latest, overflow) = nowMs.addingReportingOverflow(maxFutureSkewMs)
        if t < minTimestampMs || (!overflow && t > latest) {
            throw outOfRange(t, fromField: ts != nil, nowMs: nowMs)
        }
        return t
    }

    /// The error of an event without a time.
    @inline(never)
    static func noTimestamp() -> BadInput {
        BadInput(.missingField, "missing field 'ts' and the message has no timestamp")
    }

    /// The error of a time `t` outside the accepted range (from `ts`, or
    /// else the message timestamp).
    @inline(never)
    func outOfRange(_ t: EventTimeMs, fromField: Bool, nowMs: EventTimeMs) -> BadInput {
        let source = fromField ? "field 'ts'" : "message timestamp"
        if t < minTimestampMs {
            return BadInput(.timestampOutOfRange, "\(source) \(t) is before the earliest accepted \(minTimestampMs)")
        }
        return BadInput(.timestampOutOfRange, "\(source) \(t) is more than \(maxFutureSkewMs) ms after now (\(nowMs))")
    }
}

extension EventDecoder {
    /// Convenience overload over a byte array.
    package func decodeInteraction(_ bytes: [UInt8], messageTimestampMs: EventTimeMs?,
                                  nowMs: EventTimeMs) throws(BadInput) -> Interaction {
        let r: Result<Interaction, BadInput> = bytes.withUnsafeBytes { buf in
            Result { () throws(BadInput) in
                try decodeInteraction(buf, messageTimestampMs: messageTimestampMs, nowMs: nowMs)
            }
        }
        return try r.get()
    }

    /// Convenience overload over a byte array.
    package func decodeImpression(_ bytes: [UInt8], messageTimestampMs: EventTimeMs?,
                                 nowMs: EventTimeMs) throws(BadInput) -> Impression {
        let r: Result<Impression, BadInput> = bytes.withUnsafeBytes { buf in
            Result { () throws(BadInput) in
                try decodeImpression(buf, messageTimestampMs: messageTimestampMs, nowMs: nowMs)
            }
        }
        return try r.get()
    }
}

/// What a replay tool needs to send a record where the processor will read it,
/// read by the processor's own scanner (same unescaping, same duplicate-key
/// rule), so replay and processing can never disagree on a record's user.
package struct EventRouting: Sendable, Equatable {
    /// The `user_id` as the decoder reads it (escapes resolved, integers as
    /// decimal text; the last of duplicate keys), nil when absent or not an id.
    package var userId: String?
    /// True when the object has an `items_shown` member: an impression.
    package var isImpression: Bool
}

extension EventDecoder {
    /// The routing fields of one JSON event, or nil when the bytes are not a
    /// JSON object (such a record is bad input wherever it goes).
    ///
    /// Duplicate keys: the last occurrence wins, here and in the decoders
    /// (as in ECMAScript `JSON.parse` and Python's `json`); a record with an
    /// invalid occurrence of a field is still bad input for the decoder.
    package static func routing(_ bytes: UnsafeRawBufferPointer) -> EventRouting? {
        do throws(BadInput) {
            var s = try JSONScanner.openObject(bytes)
            var problem: BadInput?
            var routing = EventRouting(userId: nil, isImpression: false)
            var first = true
            while let field = try s.nextField(first: &first) {
                switch field {
                case .userId:
                    problem = nil
                    routing.userId = try s.readId("user_id", &problem)
                    if problem != nil { routing.userId = nil }
                case .itemsShown:
                    routing.isImpression = true
                    try s.skipValue()
                default:
                    try s.skipValue()
                }
            }
            try s.finish()
            return routing
        } catch {
            return nil
        }
    }

    /// Convenience overload over a byte array.
    package static func routing(_ bytes: [UInt8]) -> EventRouting? {
        bytes.withUnsafeBytes { routing($0) }
    }
}
