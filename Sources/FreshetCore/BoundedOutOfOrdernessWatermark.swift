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

    /// `maxTimestamp − outOfOrdernessMs` (saturating), nil before any event.
    package var watermark: EventTimeMs? {
        guard let m = maxTimestamp else { return nil }
        let (w, overflow) = m.subtractingReportingOverflow(outOfOrdernessMs)
        return overflow ? .min : w
    }
}
