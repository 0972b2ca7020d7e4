import FreshetCore

/// Parameters of a seeded synthetic recommender stream. Same config and seed ->
/// the same bytes, event for event.
package struct SyntheticConfig: Sendable {
    package var seed: UInt64
    package var users: Int
    package var items: Int
    /// Item popularity is Zipf with this exponent (rank 0 = "i0" is the most popular).
    package var zipfExponent: Double = 1.1
    /// Users are uniform when 0, else Zipf with this exponent ("mildly skewed" ~ 0.5).
    package var userZipfExponent: Double = 0
    /// Interaction events per impression event (2 means 2:1).
    package var interactionsPerImpression: Double = 2
    package var itemsPerImpression: Int = 10
    /// Event time of the first event; events advance evenly over `spanMs`.
    package var startMs: EventTimeMs
    package var spanMs: Int64
    /// Jitter: each event's time is displaced back by up to this much.
    package var outOfOrderMs: Int64 = 0
    /// Fraction of events displaced further back by a draw from `lateByMs`.
    package var lateFraction: Double = 0
    /// Default: from one hour to eight days, so some late events leave a 7-day window.
    package var lateByMs: ClosedRange<Int64> = 3_600_000...691_200_000
    /// Fraction of events that are bad input (cycling through every `BadInput.Reason`).
    package var badFraction: Double = 0
    /// Fraction of events whose user and item ids are JSON integers ("123").
    package var integerIdFraction: Double = 0
    /// The wall clock the consumer is assumed to decode with (for "too far in the
    /// future" bad events); defaults to the end of the span.
    package var nowMs: EventTimeMs

    package init(seed: UInt64, users: Int, items: Int, zipfExponent: Double = 1.1,
                interactionsPerImpression: Double = 2, itemsPerImpression: Int = 10,
                startMs: EventTimeMs = 1_732_000_000_000, spanMs: Int64 = 86_400_000,
                outOfOrderMs: Int64 = 0, lateFraction: Double = 0,
                lateByMs: ClosedRange<Int64> = 3_600_000...691_200_000, badFraction: Double = 0,
                integerIdFraction: Double = 0, userZipfExponent: Double = 0, nowMs: EventTimeMs? = nil) {
        precondition(users > 0 && items > 0, "need at least one user and one item")
        self.seed = seed
        self.users = users
        self.items = items
        self.zipfExponent = zipfExponent
        self.interactionsPerImpression = interactionsPerImpression
        self.itemsPerImpression = itemsPerImpression
        self.startMs = startMs
        self.spanMs = spanMs
        self.outOfOrderMs = outOfOrderMs
        self.lateFraction = lateFraction
        self.lateByMs = lateByMs
        self.badFraction = badFraction
        self.integerIdFraction = integerIdFraction
        self.userZipfExponent = userZipfExponent
        self.nowMs = nowMs ?? (startMs + spanMs)
    }
}
