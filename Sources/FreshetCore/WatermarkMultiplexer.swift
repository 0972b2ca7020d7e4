/// Combines per-input watermarks into one, like Flink's WatermarkOutputMultiplexer
/// with idleness: the combined watermark is the minimum over the inputs that are
/// neither idle nor finished-without-watermark.
///
/// Rules:
/// - an input's watermark never regresses (lower updates are ignored but still
///   count as activity);
/// - an input is idle when it had no update for `idleTimeoutMs` of wall time
///   (a registered input that never reported included); with `idleTimeoutMs == nil`
///   nothing is ever idle;
/// - a finished input (bounded input at its end) keeps its last watermark forever
///   and is never idle; finished without any watermark, it is excluded;
/// - a non-idle input without a watermark makes the result unknown (nil);
/// - if no input remains, the result is nil.
/// `combined` may go down when an idle input becomes active again; `advance` gives
/// the monotone output that downstream operators should use.
package struct WatermarkMultiplexer<Input: Hashable & Sendable>: Sendable {
    /// The state of one input, exposed for metrics.
    package struct InputState: Sendable, Equatable {
        package var watermark: EventTimeMs?
        /// Wall time of the last update (or of registration).
        package var lastActivityMs: Int64
        package var finished: Bool
    }

    package let idleTimeoutMs: Int64?
    package private(set) var inputs: [Input: InputState] = [:]
    /// The last value returned by `advance`.
    package private(set) var emitted: EventTimeMs?

    package init(idleTimeoutMs: Int64?) {
        self.idleTimeoutMs = idleTimeoutMs
    }

    /// Adds an input (no-op if present); its idleness clock starts now.
    package mutating func register(_ input: Input, nowMs: Int64) {
        if inputs[input] == nil {
            inputs[input] = InputState(watermark: nil, lastActivityMs: nowMs, finished: false)
        }
    }

    package mutating func remove(_ input: Input) {
        inputs[input] = nil
    }

    /// Reports a watermark for `input` (registering it if needed).
    package mutating func update(_ input: Input, watermark: EventTimeMs, nowMs: Int64) {
        var state = inputs[input] ?? InputState(watermark: nil, lastActivityMs: nowMs, finished: false)
        if state.watermark.map({ watermark > $0 }) ?? true { state.watermark = watermark }
        state.lastActivityMs = max(state.lastActivityMs, nowMs)
        inputs[input] = state
    }

    /// Marks a bounded input as ended.
    package mutating func markFinished(_ input: Input) {
        inputs[input, default: InputState(watermark: nil, lastActivityMs: .min, finished: true)].finished = true
    }

    /// True when `input` counts as idle at `nowMs`.
    package func isIdle(_ input: Input, nowMs: Int64) -> Bool {
        guard let s = inputs[input] else { return false }
        return isIdle(s, nowMs: nowMs)
    }

    private func isIdle(_ s: InputState, nowMs: Int64) -> Bool {
        guard !s.finished, let timeout = idleTimeoutMs else { return false }
        return nowMs &- s.lastActivityMs >= timeout
    }

    /// The minimum over contributing inputs (see the type's rules); may regress.
    package func combined(nowMs: Int64) -> EventTimeMs? {
        var result: EventTimeMs?
        for (_, s) in inputs {
            if s.finished {
                guard let w = s.watermark else { continue }
                result = min(result ?? w, w)
                continue
            }
            if isIdle(s, nowMs: nowMs) { continue }
            guard let w = s.watermark else { return nil }
            result = min(result ?? w, w)
        }
        return result
    }

    /// Folds `combined(nowMs:)` into the monotone output and returns it.
    ///
    /// When every input is idle (`combined` is nil), the output still moves up
    /// to the minimum of the inputs' known watermarks: had they gone idle one
    /// at a time it would have got there. Without this, a task whose inputs all
    /// went idle together before it emitted anything (a task rebuilt by
    /// replaying a quiet partition, where the markers and the idle clock of a
    /// never-reporting input start at the same moment) would keep no watermark
    /// until new input arrives, and its windowed features would read as empty.
    package mutating func advance(nowMs: Int64) -> EventTimeMs? {
        let candidate = combined(nowMs: nowMs) ?? allIdleWatermark(nowMs: nowMs)
        if let c = candidate, emitted.map({ c > $0 }) ?? true { emitted = c }
        return emitted
    }

    /// The minimum watermark over inputs that have one, when no input is
    /// active (every one idle or finished); nil otherwise.
    private func allIdleWatermark(nowMs: Int64) -> EventTimeMs? {
        var result: EventTimeMs?
        for (_, s) in inputs {
            if !s.finished && !isIdle(s, nowMs: nowMs) { return nil }
            if let w = s.watermark { result = min(result ?? w, w) }
        }
        return result
    }
}
