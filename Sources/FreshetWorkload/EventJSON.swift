import FreshetCore

/// Input events rendered in DESIGN's JSON schema, the one writer of the
/// generators (`SyntheticStream`, `PlantedPreferences`, `TasteStream`).
/// Field order: interactions `user_id, item_id, action, dwell_ms, ts,
/// request_id`; impressions `request_id, user_id, items_shown, positions, ts`;
/// absent optionals are omitted. Strings are escaped (`JSONEscape`);
/// `integerIds` writes ids as bare JSON integers (callers pass decimal ids).
package enum EventJSON {
    package static func bytes(_ event: InputEvent, integerIds: Bool = false) -> [UInt8] {
        switch event {
        case .interaction(let e): interaction(e, integerIds: integerIds)
        case .impression(let e): impression(e, integerIds: integerIds)
        }
    }

    package static func interaction(_ e: Interaction, integerIds: Bool = false) -> [UInt8] {
        var w = SyntheticJSONWriter(capacity: 128)
        w.raw("{\"user_id\":")
        w.id(e.userId, asInteger: integerIds)
        w.raw(",\"item_id\":")
        w.id(e.itemId, asInteger: integerIds)
        w.raw(",\"action\":")
        w.string(e.action.name)
        if let d = e.dwellMs {
            w.raw(",\"dwell_ms\":")
            w.int(d)
        }
        w.raw(",\"ts\":")
        w.int(e.ts)
        if let r = e.requestId {
            w.raw(",\"request_id\":")
            w.string(r)
        }
        w.byte(UInt8(ascii: "}"))
        return w.bytes
    }

    package static func impression(_ e: Impression, integerIds: Bool = false) -> [UInt8] {
        var w = SyntheticJSONWriter(capacity: 64 + 8 * e.itemsShown.count)
        w.byte(UInt8(ascii: "{"))
        if let r = e.requestId {
            w.raw("\"request_id\":")
            w.string(r)
            w.byte(UInt8(ascii: ","))
        }
        w.raw("\"user_id\":")
        w.id(e.userId, asInteger: integerIds)
        w.raw(",\"items_shown\":[")
        for (k, item) in e.itemsShown.enumerated() {
            if k > 0 { w.byte(UInt8(ascii: ",")) }
            w.id(item, asInteger: integerIds)
        }
        w.byte(UInt8(ascii: "]"))
        if let positions = e.positions {
            w.raw(",\"positions\":[")
            for (k, p) in positions.enumerated() {
                if k > 0 { w.byte(UInt8(ascii: ",")) }
                w.int(Int64(p))
            }
            w.byte(UInt8(ascii: "]"))
        }
        w.raw(",\"ts\":")
        w.int(e.ts)
        w.byte(UInt8(ascii: "}"))
        return w.bytes
    }
}

extension InputEvent {
    /// The topic the event is produced to: `interactions` or `impressions`.
    package var topic: String {
        if case .interaction = self { return "interactions" }
        return "impressions"
    }
}
