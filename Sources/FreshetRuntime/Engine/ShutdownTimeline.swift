import Logging

/// How long each step of a processor's shutdown took, logged as one line
/// ("shutdown", at info): the end of a bounded run (flush, final checkpoint,
/// the final embedding refresh and republication, leaving the group, the
/// Redis writer's drain) is part of its wall time, and an operator asking
/// why a run's last seconds are slow reads the answer there.
struct ShutdownTimeline {
    private let clock: () -> ContinuousClock.Instant
    private var last: ContinuousClock.Instant
    /// The steps in the order they ended, with their durations.
    private(set) var steps: [(name: String, duration: Duration)] = []

    init(clock: @escaping () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.clock = clock
        self.last = clock()
    }

    /// Ends the step named `name` now (the next one starts).
    mutating func mark(_ name: String) {
        let now = clock()
        steps.append((name, now - last))
        last = now
    }

    /// `steps`: "name=seconds" in order, milliseconds precision; `total_s`.
    var metadata: Logger.Metadata {
        let listed = steps.map { "\($0.name)=\(Self.seconds($0.duration))" }.joined(separator: " ")
        let total = steps.reduce(Duration.zero) { $0 + $1.duration }
        return ["steps": "\(listed)", "total_s": "\(Self.seconds(total))"]
    }

    private static func seconds(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        let fraction = String(ms % 1000)
        return "\(ms / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
