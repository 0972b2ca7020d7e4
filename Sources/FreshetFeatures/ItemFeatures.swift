import FreshetCore

/// The item-keyed features written to `item:{item_id}` and to the `trending` set.
public struct ItemFeatures: Equatable, Sendable {
    /// `popularity_7d`: positive interactions in the window at the current watermark.
    public var popularity7d: Int64
    /// `impressions_7d`: appearances in `items_shown` lists in the same window.
    public var impressions7d: Int64
    /// Max event time over the positives and impressions routed to the item,
    /// including those dropped as too late for the window.
    public var updatedMs: EventTimeMs
    /// log2 forward-decay score (see `TrendingDecay`); nil before any positive.
    public var trendingLog2Score: Double?

    public init(popularity7d: Int64, impressions7d: Int64, updatedMs: EventTimeMs, trendingLog2Score: Double?) {
        self.popularity7d = popularity7d
        self.impressions7d = impressions7d
        self.updatedMs = updatedMs
        self.trendingLog2Score = trendingLog2Score
    }
}

/// What `ItemFeatureStore.apply` did with an event.
public enum ItemApplyOutcome: Sendable, Equatable {
    /// Counted in its pane (visible now or once the watermark reaches the pane).
    case counted
    /// Its pane had already left the window: not counted, `droppedLateCount` += 1
    /// (`updatedMs` and trending still took it).
    case droppedLate
    /// A skip: item features ignore it.
    case ignored
}
