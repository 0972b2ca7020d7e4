/// A bounded run's estimate of the wall time left until its end: the records
/// its partitions still hold (their lag) at the rate it read records over
/// the last few seconds. Rough by design (repartition records not produced
/// yet are not in the lag; the rate moves with the host), it only decides
/// whether a new embedding refresh is worth switching to before the end
/// (`StreamProcessor.finalRefreshComesFirst`): a wrong guess moves when
/// vectors are rewritten, never what the run ends with.
struct BoundedRunEndEstimate {
    /// Observations older than this (wall ms) are dropped: the rate is the
    /// recent one, not the run's average (which the group's first
    /// assignment and a slow start would hold down).
    static let windowMs: Int64 = 5_000

    private var samples: [(ms: Int64, consumed: Int)] = []

    /// Records `consumed` (records read so far, every topic) at `nowMs`.
    mutating func observe(nowMs: Int64, consumed: Int) {
        samples.append((nowMs, consumed))
        while let first = samples.first, nowMs - first.ms > Self.windowMs, samples.count > 2 { samples.removeFirst() }
    }

    /// Wall ms until the lag is read at the recent rate; nil while unknown
    /// (no lag, less than a second of observations, or no record read in it).
    func remainingMs(lag: Int?) -> Int64? {
        guard let lag, let first = samples.first, let last = samples.last else { return nil }
        let elapsed = last.ms - first.ms
        let read = last.consumed - first.consumed
        guard elapsed >= 1_000, read > 0 else { return nil }
        return Int64((Double(lag) * Double(elapsed) / Double(read)).rounded(.up))
    }
}
