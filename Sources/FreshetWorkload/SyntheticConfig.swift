import FreshetCore

/// Parameters of a seeded synthetic recommender stream. Same config and seed ->
/// the same bytes, event for event.
public struct SyntheticConfig: Sendable {
    public var seed: UInt64
    public var users: Int
    public var items: Int
    /// Item popularity is Zipf with this exponent (rank 0 = "i0" is the most popular).
    public var zipfExponent: Double = 1.1
    /// Users are uniform when 0, else Zipf with this exponent ("mildly skewed" ~ 0.5).
    public var userZipfExponent: Double = 0
    /// Interaction events per impression event (2 means 2:1).
    public var interactionsPerImpression: Double = 2
    public var itemsPerImpression: Int = 10
    /// Event time of the first event; events advance evenly over `spanMs`.
    public var startMs: EventTimeMs
    public var spanMs: Int64
    /// Jitter: each event's time is displaced back by up to this much.
    public var outOfOrderMs: Int64 = 0
    /// Fraction of events displaced further back by a draw from `lateByMs`.
    public var lateFraction: Double = 0
    /// Default: from one hour to eight days, so some late events leave a 7-day window.
    public var lateByMs: ClosedRange<Int64> = 3_600_000...691_200_000
    /// Fraction of events that are bad input (cycling through every `BadInput.Reason`).
    public var badFraction: Double = 0
    /// Fraction of events whose user and item ids are JSON integers ("123").
    public var integerIdFraction: Double = 0
    /// The wall clock the consumer is assumed to decode with (for "too far in the
    /// future" bad events); defaults to the end of the span.
    public var nowMs: EventTimeMs

    public init(seed: UInt64, users: Int, items: Int, zipfExponent: Double = 1.1,
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
