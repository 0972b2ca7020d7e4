import FreshetCore

/// The item-keyed features written to `item:{item_id}` and to the `trending` set.
package struct ItemFeatures: Equatable, Sendable {
    /// `popularity_7d`: positive interactions in the window at the current watermark.
    package var popularity7d: Int64
    /// `impressions_7d`: appearances in `items_shown` lists in the same window.
    package var impressions7d: Int64
    /// Max event time over the positives and impressions routed to the item,
    /// including those dropped as too late for the window.
    package var updatedMs: EventTimeMs
    /// The event time the counts are as of: the later of `updatedMs` and the
    /// start of the pane whose arrival last made the counts fall (a pane
    /// leaving the window). Monotone per item, a function of the events alone
    /// (not of flush timing); Feast rows carry it as the item view's `_ts`.
    package var asOfMs: EventTimeMs
    /// log2 forward-decay score (see `TrendingDecay`); nil before any positive.
    package var trendingLog2Score: Double?

    package init(popularity7d: Int64, impressions7d: Int64, updatedMs: EventTimeMs, asOfMs: EventTimeMs? = nil,
                trendingLog2Score: Double?) {
        self.popularity7d = popularity7d
        self.impressions7d = impressions7d
        self.updatedMs = updatedMs
        self.asOfMs = asOfMs ?? updatedMs
        self.trendingLog2Score = trendingLog2Score
    }
}

/// What `ItemFeatureStore.apply` did with an event.
package enum ItemApplyOutcome: Sendable, Equatable {
    /// Counted in its pane (visible now or once the watermark reaches the pane).
    case counted
    /// Its pane had already left the window: not counted, `droppedLateCount` += 1
    /// (`updatedMs` and trending still took it).
    case droppedLate
    /// A skip: item features ignore it.
    case ignored
}
