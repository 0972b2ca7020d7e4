/// A decoded, validated event of the `interactions` topic.
///
/// Ids are kept as the strings used in Redis keys: an integer id in the JSON
/// becomes its decimal form ("42"); a string id is kept unchanged.
package struct Interaction: Sendable, Equatable {
    package var userId: String
    package var itemId: String
    package var action: Action
    /// Non-negative when present.
    package var dwellMs: Int64?
    /// Event time (from `ts`, else the Kafka message timestamp).
    package var ts: EventTimeMs
    package var requestId: String?

    package init(userId: String, itemId: String, action: Action, dwellMs: Int64? = nil,
                ts: EventTimeMs, requestId: String? = nil) {
        self.userId = userId
        self.itemId = itemId
        self.action = action
        self.dwellMs = dwellMs
        self.ts = ts
        self.requestId = requestId
    }
}
