/// Flink's bounded-out-of-orderness watermark for one input (partition):
/// watermark = (largest event time seen) − bound. Never regresses, because the
/// maximum never does.
package struct BoundedOutOfOrdernessWatermark: Sendable, Equatable {
    package let outOfOrdernessMs: Int64
    /// Largest event time observed; nil before the first event.
    package private(set) var maxTimestamp: EventTimeMs?

    package init(outOfOrdernessMs: Int64) {
        precondition(outOfOrdernessMs >= 0, "out-of-orderness bound must be non-negative")
        self.outOfOrdernessMs = outOfOrdernessMs
    }

    @inline(__always)
    package mutating func observe(_ ts: EventTimeMs) {
        if let m = maxTimestamp, m >= ts { return }
        maxTimestamp = ts
    }

    /// When an event just observed at `ts` is known downstream, if it is
    /// late: an event at or behind the watermark (after observing it) is
    /// known from just past the watermark, `watermark + 1`; nil for an
    /// on-time event, known from its own `ts`.
    ///
    /// Why: every marker this input sent before the event carried at most
    /// the current watermark, so a stage that releases held records in
    /// event-time order up to the minimum of its inputs' markers has released
    /// nothing at or after `watermark + 1` before this event arrives. Ordering
    /// late events by this time (the counts stage and the join do) makes their
    /// results a function of each partition's log, not of how the partitions'
    /// records interleave (docs/EMBEDDINGS.md, "Late events").
    @inline(__always)
    package func knownAt(_ ts: EventTimeMs) -> EventTimeMs? {
        guard let w = watermark, ts <= w else { return nil }
        return w == .max ? w : w + 1
    }

    /// `maxTimestamp − outOfOrdernessMs` (saturating), nil before any event.
    package var watermark: EventTimeMs? {
        guard let m = maxTimestamp else { return nil }
        let (w, overflow) = m.subtractingReportingOverflow(outOfOrdernessMs)
        return overflow ? .min : w
    }
}
