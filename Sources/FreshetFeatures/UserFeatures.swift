import FreshetCore

/// The user-keyed features written to `user:{user_id}` (DESIGN.md "Redis layout").
package struct UserFeatures: Equatable, Sendable {
    /// `recent_items_50`: unique, newest first (see `UserFeatureStore`).
    package var recentItems: [String]
    /// `interaction_count`: positive interactions ever seen.
    package var interactionCount: Int64
    /// `updated_ms`: the largest event time of the positive interactions folded in.
    package var updatedMs: EventTimeMs

    package init(recentItems: [String], interactionCount: Int64, updatedMs: EventTimeMs) {
        self.recentItems = recentItems
        self.interactionCount = interactionCount
        self.updatedMs = updatedMs
    }
}
