import FreshetCore

// Training examples: what the online joiner makes of FreshetCore's input
// events (`Interaction`, `Impression`, `Action`; the module has no event model
// of its own).

/// Label of a training example.
package enum ExampleLabel: Int, Sendable, Hashable {
    case negative = 0
    case positive = 1
}

/// Feature values as of the impression (the same values serving read), recorded
/// with the impression so the offline examples carry no training/serving skew.
package struct ServingFeatures: Sendable, Hashable {
    /// The user's `interaction_count`.
    package var interactionCount: Int64
    /// The item's `popularity_7d`.
    package var popularity7d: Int64
    /// The item's `impressions_7d`.
    package var impressions7d: Int64

    package init(interactionCount: Int64, popularity7d: Int64, impressions7d: Int64) {
        self.interactionCount = interactionCount
        self.popularity7d = popularity7d
        self.impressions7d = impressions7d
    }
}

/// A labeled example produced by the online joiner, written to `freshet-examples`.
package struct TrainingExample: Sendable, Hashable {
    package var label: ExampleLabel
    package var userId: String
    package var itemId: String
    /// The action; nil for an impressed item that got no engagement within the window.
    package var action: Action?
    /// Position in the impression list, when the example joined an impression.
    package var position: Int?
    package var dwellMs: Int64?
    package var requestId: String?
    /// Event time of the impression, when the example joined one.
    package var impressionTs: Int64?
    /// Event time of the example: the interaction's ts, or the window close time for
    /// a no-engagement negative.
    package var eventTs: Int64
    /// Serving features as of the impression (nil when no impression was joined).
    package var features: ServingFeatures?
    /// True for a positive whose impression window had already closed (its impression
    /// was also emitted as a negative).
    package var late: Bool

    package init(label: ExampleLabel, userId: String, itemId: String, action: Action?,
                position: Int? = nil, dwellMs: Int64? = nil, requestId: String? = nil,
                impressionTs: Int64? = nil, eventTs: Int64, features: ServingFeatures? = nil,
                late: Bool = false) {
        self.label = label; self.userId = userId; self.itemId = itemId; self.action = action
        self.position = position; self.dwellMs = dwellMs; self.requestId = requestId
        self.impressionTs = impressionTs; self.eventTs = eventTs; self.features = features
        self.late = late
    }

    package var isPositive: Bool { label == .positive }

    /// Compact JSON (UTF-8) for the `freshet-examples` topic. Absent optionals are
    /// omitted. Field names follow the input schema (`user_id`, `ts`, ...):
    /// `{"label":1,"user_id":"u1","item_id":"i9","action":"click","position":0,
    ///   "dwell_ms":4500,"request_id":"r7","impression_ts":...,"ts":...,
    ///   "interaction_count":3,"popularity_7d":120,"impressions_7d":900}`
    /// (`"late":true` only when set).
    package func jsonBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(192)
        func raw(_ s: StaticString) { s.withUTF8Buffer { out.append(contentsOf: $0) } }
        func int(_ v: Int64) { out.append(contentsOf: String(v).utf8) }
        raw("{\"label\":"); int(Int64(label.rawValue))
        raw(",\"user_id\":"); JSONEscape.appendString(userId, to: &out)
        raw(",\"item_id\":"); JSONEscape.appendString(itemId, to: &out)
        if let action { raw(",\"action\":\""); out.append(contentsOf: action.name.utf8); raw("\"") }
        if let position { raw(",\"position\":"); int(Int64(position)) }
        if let dwellMs { raw(",\"dwell_ms\":"); int(dwellMs) }
        if let requestId { raw(",\"request_id\":"); JSONEscape.appendString(requestId, to: &out) }
        if let impressionTs { raw(",\"impression_ts\":"); int(impressionTs) }
        raw(",\"ts\":"); int(eventTs)
        if let f = features {
            raw(",\"interaction_count\":"); int(f.interactionCount)
            raw(",\"popularity_7d\":"); int(f.popularity7d)
            raw(",\"impressions_7d\":"); int(f.impressions7d)
        }
        if late { raw(",\"late\":true") }
        raw("}")
        return out
    }
}
