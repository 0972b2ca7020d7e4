// A one-line progress report on stderr every few seconds:
//   freshet: 123,456 events (98,765 ev/s), lag 1,234, watermark 2026-11-27T17:59:54Z
// Events and lag are the source topics' (the records a replay has to read);
// repartition records, which are this instance's own traffic, are not counted.
// The line is built by `ProgressReporter.formatLine`, a pure function; the
// timer thread only samples the closures and prints.

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package final class ProgressReporter: Sendable {
    package let interval: Double
    private let events: @Sendable () -> Int
    private let lag: @Sendable () -> Int?
    private let watermarkMs: @Sendable () -> Int64?
    private let output: @Sendable (String) -> Void

    private struct State: Sendable {
        var running = false
        var stopSignal: DispatchSemaphoreBox? = nil
        var exited: DispatchSemaphoreBox? = nil
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - interval: seconds between lines.
    ///   - events: events consumed so far (monotonic).
    ///   - lag: total consumer lag, nil when unknown.
    ///   - watermarkMs: the instance's watermark (minimum over its tasks), epoch ms; nil when none yet.
    ///   - output: where lines go; stderr by default (one write per line, newline included).
    package init(interval: Double = 10,
                events: @escaping @Sendable () -> Int,
                lag: @escaping @Sendable () -> Int?,
                watermarkMs: @escaping @Sendable () -> Int64?,
                output: @escaping @Sendable (String) -> Void = ProgressReporter.writeToStderr) {
        precondition(interval > 0, "interval must be positive")
        self.interval = interval
        self.events = events
        self.lag = lag
        self.watermarkMs = watermarkMs
        self.output = output
    }

    package static let writeToStderr: @Sendable (String) -> Void = { line in
        let text = line.hasSuffix("\n") ? line : line + "\n"
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// Starts the timer thread (no-op when running).
    package func start() {
        state.withLock { st in
            guard !st.running else { return }
            let stop = DispatchSemaphoreBox()
            let exited = DispatchSemaphoreBox()
            st.running = true
            st.stopSignal = stop
            st.exited = exited
            let thread = Thread { [self] in
                var lastEvents = self.events()
                var lastTime = MonotonicClock.seconds()
                while stop.semaphore.wait(timeout: .now() + self.interval) == .timedOut {
                    let now = MonotonicClock.seconds()
                    let current = self.events()
                    let rate = Self.rate(events: current - lastEvents, seconds: now - lastTime)
                    self.output(Self.formatLine(events: current, eventsPerSecond: rate,
                                                lag: self.lag(), watermarkMs: self.watermarkMs()))
                    lastEvents = current
                    lastTime = now
                }
                exited.semaphore.signal()
            }
            thread.name = "freshet-progress"
            thread.start()
        }
    }

    /// Stops the timer thread and waits for it (bounded by `timeout` seconds).
    package func stop(timeout: Double = 2) {
        let taken: State? = state.withLock { st in
            guard st.running else { return nil }
            let copy = st
            st = State()
            return copy
        }
        guard let st = taken else { return }
        st.stopSignal?.semaphore.signal()
        _ = st.exited?.semaphore.wait(timeout: .now() + timeout)
    }

    // MARK: Pure formatting

    /// Events per second over an interval; 0 for an empty interval or a counter that went back.
    package static func rate(events delta: Int, seconds: Double) -> Double {
        guard seconds > 0, delta > 0 else { return 0 }
        return Double(delta) / seconds
    }

    /// `freshet: 123,456 events (98,765 ev/s), lag 1,234, watermark 2026-11-27T17:59:54Z`.
    /// Unknown lag prints as `lag ?`; no watermark yet as `watermark none`.
    package static func formatLine(events: Int, eventsPerSecond: Double, lag: Int?, watermarkMs: Int64?) -> String {
        let rate = eventsPerSecond.isFinite ? Int(max(0, eventsPerSecond).rounded()) : 0
        let lagText = lag.map(groupThousands) ?? "?"
        let wmText = watermarkMs.flatMap { iso8601UTC(epochMs: $0) } ?? "none"
        return "freshet: \(groupThousands(events)) events (\(groupThousands(rate)) ev/s), lag \(lagText), watermark \(wmText)"
    }

    /// `1234567` → `"1,234,567"`, `-1234` → `"-1,234"`.
    package static func groupThousands(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// Epoch milliseconds → `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds, floored);
    /// nil for values outside years 0000..9999 (e.g. a "no watermark" sentinel like Int64.min).
    package static func iso8601UTC(epochMs: Int64) -> String? {
        // Years 0000..9999.
        guard epochMs >= -62_167_219_200_000, epochMs <= 253_402_300_799_999 else { return nil }
        let secs = epochMs >= 0 ? epochMs / 1000 : (epochMs - 999) / 1000
        var days = secs >= 0 ? secs / 86_400 : (secs - 86_399) / 86_400
        let sod = secs - days * 86_400
        // Howard Hinnant's civil_from_days.
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        var year = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        if month <= 2 { year += 1 }
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(sod / 3600, 2)):\(pad(sod % 3600 / 60, 2)):\(pad(sod % 60, 2))Z"
    }
}
