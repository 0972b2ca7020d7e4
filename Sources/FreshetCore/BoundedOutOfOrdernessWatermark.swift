/// Flink's bounded-out-of-orderness watermark for one input (partition):
/// watermark = (largest event time seen) − bound. Never regresses, because the
/// maximum never does.
public struct BoundedOutOfOrdernessWatermark: Sendable, Equatable {
    public let outOfOrdernessMs: Int64
    /// Largest event time observed; nil before the first event.
    public private(set) var maxTimestamp: EventTimeMs?

    public init(outOfOrdernessMs: Int64) {
        precondition(outOfOrdernessMs >= 0, "out-of-orderness bound must be non-negative")
        self.outOfOrdernessMs = outOfOrdernessMs
    }

    @inline(__always)
    public mutating func observe(_ ts: EventTimeMs) {
        if let m = maxTimestamp, m >= ts { return }
        maxTimestamp = ts
    }

    /// `maxTimestamp − outOfOrdernessMs` (saturating), nil before any event.
    public var watermark: EventTimeMs? {
        guard let m = maxTimestamp else { return nil }
        let (w, overflow) = m.subtractingReportingOverflow(outOfOrdernessMs)
        return overflow ? .min : w
    }
}
