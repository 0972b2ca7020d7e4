// Prometheus metrics without an external package: counters, gauges and
// histograms with labels, rendered in the text exposition format 0.0.4.
//
// Hot path: `registry.counter(...)` (and `gauge`, `histogram`) take a lock and
// look the series up; callers do that once and keep the returned handle.
// Handle operations (`Counter.increment`, `Gauge.set`, `Histogram.observe`)
// are lock-free atomics and safe from any thread.

import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Handles

/// A monotonically increasing count. Cheap: one relaxed atomic add.
public final class Counter: Sendable {
    private let storage = Atomic<Int>(0)

    init() {}

    /// Adds `amount` (must not be negative; counters only go up).
    @inline(__always)
    public func increment(by amount: Int = 1) {
        precondition(amount >= 0, "counters only go up")
        storage.wrappingAdd(amount, ordering: .relaxed)
    }

    /// Same as `increment(by: 1)`.
    @inline(__always)
    public func inc() { storage.wrappingAdd(1, ordering: .relaxed) }

    public var value: Int { storage.load(ordering: .relaxed) }
}

/// A value that goes up and down. Stored as the bit pattern of a `Double`.
public final class Gauge: Sendable {
    private let bits = Atomic<UInt64>(0.0.bitPattern)

    init() {}

    @inline(__always)
    public func set(_ value: Double) { bits.store(value.bitPattern, ordering: .relaxed) }

    /// Convenience for integral values (partition counts, offsets, 0/1 flags).
    @inline(__always)
    public func set(_ value: Int) { set(Double(value)) }

    public func add(_ delta: Double) {
        var old = bits.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + delta).bitPattern
            let (exchanged, original) = bits.weakCompareExchange(
                expected: old, desired: new, successOrdering: .relaxed, failureOrdering: .relaxed)
            if exchanged { return }
            old = original
        }
    }

    public func inc() { add(1) }
    public func dec() { add(-1) }

    public var value: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }
}

/// One atomic slot; a class so that an array of them can be shared.
final class AtomicSlot: Sendable {
    let count = Atomic<Int>(0)
    init() {}
}

/// A distribution over fixed buckets. `observe` is lock-free: a short linear
/// scan of the bounds, one atomic add for the bucket and a CAS loop for the sum.
public final class Histogram: Sendable {
    /// Upper bounds, strictly increasing, without +Inf.
    public let upperBounds: [Double]
    /// Per-bucket (not cumulative) counts; the last slot is the +Inf bucket.
    private let slots: [AtomicSlot]
    private let sumBits = Atomic<UInt64>(0.0.bitPattern)

    init(upperBounds: [Double]) {
        self.upperBounds = upperBounds
        self.slots = (0...upperBounds.count).map { _ in AtomicSlot() }
    }

    public func observe(_ value: Double) {
        guard !value.isNaN else { return }
        var index = upperBounds.count
        for (i, bound) in upperBounds.enumerated() where value <= bound {
            index = i
            break
        }
        slots[index].count.wrappingAdd(1, ordering: .relaxed)
        var old = sumBits.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + value).bitPattern
            let (exchanged, original) = sumBits.weakCompareExchange(
                expected: old, desired: new, successOrdering: .relaxed, failureOrdering: .relaxed)
            if exchanged { return }
            old = original
        }
    }

    /// Observes the seconds elapsed since `start` (from `MetricsRegistry.monotonicSeconds()`).
    public func observeSince(_ start: Double) {
        observe(MetricsRegistry.monotonicSeconds() - start)
    }

    /// A consistent-enough snapshot: cumulative counts per bound (last is +Inf), sum, count.
    public func snapshot() -> (cumulative: [Int], sum: Double, count: Int) {
        var cumulative: [Int] = []
        cumulative.reserveCapacity(slots.count)
        var running = 0
        for slot in slots {
            running += slot.count.load(ordering: .relaxed)
            cumulative.append(running)
        }
        return (cumulative, Double(bitPattern: sumBits.load(ordering: .relaxed)), running)
    }

    public var count: Int { snapshot().count }
    public var sum: Double { Double(bitPattern: sumBits.load(ordering: .relaxed)) }
}

// MARK: - Registry

public enum MetricType: String, Sendable {
    case counter, gauge, histogram
}

/// Holds metric families and renders them in the Prometheus text format 0.0.4.
/// Families render in registration order; series within a family in creation order.
public final class MetricsRegistry: Sendable {
    enum Handle: Sendable {
        case counter(Counter)
        case gauge(Gauge)
        case histogram(Histogram)
    }

    struct Series: Sendable {
        /// Label pairs sorted by name.
        let labels: [(String, String)]
        let handle: Handle
    }

    struct Family: Sendable {
        let name: String
        let help: String
        let type: MetricType
        let buckets: [Double]
        var order: [String] = []            // series keys in creation order
        var series: [String: Series] = [:]
    }

    struct State: Sendable {
        var order: [String] = []
        var families: [String: Family] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Prometheus' default buckets (seconds).
    public static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// Returns the counter for `name` and `labels`, creating family and series on first use.
    /// The same name and labels always give the same handle. Keep the handle on hot paths.
    public func counter(_ name: String, help: String, labels: [String: String] = [:]) -> Counter {
        let handle = series(name, help: help, type: .counter, buckets: [], labels: labels) { .counter(Counter()) }
        guard case .counter(let c) = handle else { preconditionFailure("unreachable") }
        return c
    }

    public func gauge(_ name: String, help: String, labels: [String: String] = [:]) -> Gauge {
        let handle = series(name, help: help, type: .gauge, buckets: [], labels: labels) { .gauge(Gauge()) }
        guard case .gauge(let g) = handle else { preconditionFailure("unreachable") }
        return g
    }

    /// `buckets` are upper bounds, strictly increasing, +Inf implied. All series of a
    /// family share the buckets given at the family's first registration.
    public func histogram(_ name: String, help: String, buckets: [Double] = MetricsRegistry.defaultBuckets,
                          labels: [String: String] = [:]) -> Histogram {
        precondition(!buckets.isEmpty && zip(buckets, buckets.dropFirst()).allSatisfy { $0 < $1 }
                         && buckets.allSatisfy { $0.isFinite },
                     "histogram \(name): buckets must be finite and strictly increasing")
        let handle = series(name, help: help, type: .histogram, buckets: buckets, labels: labels) {
            .histogram(Histogram(upperBounds: buckets))
        }
        guard case .histogram(let h) = handle else { preconditionFailure("unreachable") }
        return h
    }

    /// Declares a family without creating any series (so HELP/TYPE show before the first value).
    public func declare(_ name: String, help: String, type: MetricType, buckets: [Double] = MetricsRegistry.defaultBuckets) {
        precondition(Self.isValidMetricName(name), "invalid metric name \(name)")
        state.withLock { st in
            if let existing = st.families[name] {
                precondition(existing.type == type, "metric \(name) already registered as \(existing.type)")
                return
            }
            st.order.append(name)
            st.families[name] = Family(name: name, help: help, type: type, buckets: type == .histogram ? buckets : [])
        }
    }

    /// Removes one series (e.g. a revoked partition's). Returns whether it existed.
    @discardableResult
    public func remove(_ name: String, labels: [String: String]) -> Bool {
        let key = Self.seriesKey(Self.sortedLabels(labels))
        return state.withLock { st in
            guard var family = st.families[name], family.series.removeValue(forKey: key) != nil else { return false }
            family.order.removeAll { $0 == key }
            st.families[name] = family
            return true
        }
    }

    /// Removes every series of `name` whose labels match `predicate`. Returns how many went.
    @discardableResult
    public func removeAll(_ name: String, where predicate: ([String: String]) -> Bool) -> Int {
        state.withLock { st in
            guard var family = st.families[name] else { return 0 }
            var removed = 0
            for (key, s) in family.series {
                var dict: [String: String] = [:]
                for (k, v) in s.labels { dict[k] = v }
                if predicate(dict) {
                    family.series.removeValue(forKey: key)
                    removed += 1
                }
            }
            if removed > 0 {
                family.order.removeAll { family.series[$0] == nil }
                st.families[name] = family
            }
            return removed
        }
    }

    /// Number of live series in a family (0 when unknown).
    public func seriesCount(_ name: String) -> Int {
        state.withLock { $0.families[name]?.series.count ?? 0 }
    }

    private func series(_ name: String, help: String, type: MetricType, buckets: [Double],
                        labels: [String: String], make: () -> Handle) -> Handle {
        let sorted = Self.sortedLabels(labels)
        let key = Self.seriesKey(sorted)
        return state.withLock { st in
            if let family = st.families[name], let existing = family.series[key] {
                precondition(family.type == type, "metric \(name) already registered as \(family.type), not \(type)")
                return existing.handle
            }
            precondition(Self.isValidMetricName(name), "invalid metric name \(name)")
            for (k, _) in sorted {
                precondition(Self.isValidLabelName(k) && !(type == .histogram && k == "le"),
                             "invalid label name \(k) for \(name)")
            }
            var family = st.families[name] ?? {
                st.order.append(name)
                return Family(name: name, help: help, type: type, buckets: buckets)
            }()
            precondition(family.type == type, "metric \(name) already registered as \(family.type), not \(type)")
            precondition(type != .histogram || family.buckets == buckets,
                         "histogram \(name) already registered with other buckets")
            let handle = make()
            family.series[key] = Series(labels: sorted, handle: handle)
            family.order.append(key)
            st.families[name] = family
            return handle
        }
    }

    // MARK: Rendering

    /// The whole registry in the Prometheus text exposition format 0.0.4.
    public func render() -> String {
        let families: [Family] = state.withLock { st in st.order.compactMap { st.families[$0] } }
        var out = ""
        out.reserveCapacity(families.count * 256)
        for family in families {
            out += "# HELP \(family.name) \(Self.escapeHelp(family.help))\n"
            out += "# TYPE \(family.name) \(family.type.rawValue)\n"
            for key in family.order {
                guard let s = family.series[key] else { continue }
                switch s.handle {
                case .counter(let c):
                    out += "\(family.name)\(Self.labelText(s.labels)) \(c.value)\n"
                case .gauge(let g):
                    out += "\(family.name)\(Self.labelText(s.labels)) \(Self.formatValue(g.value))\n"
                case .histogram(let h):
                    let snap = h.snapshot()
                    for (i, bound) in h.upperBounds.enumerated() {
                        let labels = s.labels + [("le", Self.formatValue(bound))]
                        out += "\(family.name)_bucket\(Self.labelText(labels)) \(snap.cumulative[i])\n"
                    }
                    out += "\(family.name)_bucket\(Self.labelText(s.labels + [("le", "+Inf")])) \(snap.count)\n"
                    out += "\(family.name)_sum\(Self.labelText(s.labels)) \(Self.formatValue(snap.sum))\n"
                    out += "\(family.name)_count\(Self.labelText(s.labels)) \(snap.count)\n"
                }
            }
        }
        return out
    }

    /// Content type of `render()`'s output.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    // MARK: Format helpers (internal, tested)

    static func sortedLabels(_ labels: [String: String]) -> [(String, String)] {
        labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    static func seriesKey(_ sorted: [(String, String)]) -> String {
        // Unit separators cannot collide with escaped text in practice; exact equality is what matters.
        sorted.map { "\($0.0)\u{1F}\($0.1)" }.joined(separator: "\u{1E}")
    }

    static func labelText(_ labels: [(String, String)]) -> String {
        if labels.isEmpty { return "" }
        return "{" + labels.map { "\($0.0)=\"\(escapeLabelValue($0.1))\"" }.joined(separator: ",") + "}"
    }

    /// Label values: backslash, double quote and line feed are escaped.
    public static func escapeLabelValue(_ s: String) -> String {
        guard s.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return s }
        var out = ""
        for ch in s {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }

    /// HELP text: backslash and line feed are escaped.
    public static func escapeHelp(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }

    /// Numbers as Prometheus (Go's 'g' -1 formatting) would read them: integral values
    /// without a fraction, `+Inf`, `-Inf`, `NaN`, otherwise the shortest round-trip form.
    public static func formatValue(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    static func isValidMetricName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first else { return false }
        func ok(_ c: Unicode.Scalar, first: Bool) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" || c == ":" || (!first && c >= "0" && c <= "9")
        }
        return ok(first, first: true) && s.unicodeScalars.dropFirst().allSatisfy { ok($0, first: false) }
    }

    static func isValidLabelName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, !s.hasPrefix("__") else { return false }
        func ok(_ c: Unicode.Scalar, first: Bool) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" || (!first && c >= "0" && c <= "9")
        }
        return ok(first, first: true) && s.unicodeScalars.dropFirst().allSatisfy { ok($0, first: false) }
    }

    // MARK: Time

    /// Seconds on a monotonic clock, for timing with `Histogram.observeSince`.
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    // MARK: Secrets

    /// Masks secrets in a configuration description before it is logged or exposed:
    /// URL passwords (`redis://user:pw@host` → `redis://user:***@host`, `redis://pw@host` →
    /// `redis://***@host`) and the values of keys that look secret (`password`, `passwd`,
    /// `secret`, `token`, `api_key`/`apikey`, `credential(s)`, `sasl.password`,
    /// `ssl.key.password`, `auth`), in `key=value`, `key: value` and `"key":"value"` forms.
    public static func redact(_ text: String) -> String {
        var out = redactURLUserInfo(text)
        out = redactKeyValues(out)
        return out
    }

    static let mask = "***"

    private static func redactURLUserInfo(_ text: String) -> String {
        // scheme://userinfo@ — userinfo has no '/', '@' or whitespace.
        let chars = Array(text)
        var out = ""
        var i = 0
        while i < chars.count {
            // Look for "://"
            if chars[i] == ":", i + 2 < chars.count, chars[i + 1] == "/", chars[i + 2] == "/" {
                out += "://"
                i += 3
                var j = i
                while j < chars.count, chars[j] != "/", chars[j] != "@", !chars[j].isWhitespace,
                      chars[j] != "\"", chars[j] != "'", chars[j] != ",", chars[j] != ";" {
                    j += 1
                }
                if j < chars.count, chars[j] == "@", j > i {
                    let userinfo = String(chars[i..<j])
                    if let colon = userinfo.firstIndex(of: ":") {
                        out += String(userinfo[..<colon]) + ":" + mask + "@"
                    } else {
                        out += mask + "@"
                    }
                    i = j + 1
                }
                continue
            }
            out.append(chars[i])
            i += 1
        }
        return out
    }

    private static let secretKeyWords = ["password", "passwd", "secret", "token", "api_key", "apikey",
                                         "api-key", "credential", "auth"]

    private static func redactKeyValues(_ text: String) -> String {
        let chars = Array(text)
        var out = ""
        var i = 0
        while i < chars.count {
            // Read an identifier-ish key: letters, digits, '_', '.', '-'.
            if isKeyChar(chars[i]), i == 0 || !isKeyChar(chars[i - 1]) {
                var j = i
                while j < chars.count, isKeyChar(chars[j]) { j += 1 }
                let key = String(chars[i..<j])
                out += key
                i = j
                guard isSecretKey(key) else { continue }
                // Optional closing quote of a JSON key, spaces, then '=' or ':'.
                var k = i
                if k < chars.count, chars[k] == "\"" || chars[k] == "'" { k += 1 }
                while k < chars.count, chars[k] == " " { k += 1 }
                guard k < chars.count, chars[k] == "=" || chars[k] == ":" else { continue }
                k += 1
                while k < chars.count, chars[k] == " " { k += 1 }
                out += String(chars[i..<k])
                i = k
                // Value: quoted or bare.
                if i < chars.count, chars[i] == "\"" || chars[i] == "'" {
                    let quote = chars[i]
                    var e = i + 1
                    while e < chars.count, chars[e] != quote {
                        if chars[e] == "\\" { e += 1 }
                        e += 1
                    }
                    out.append(quote)
                    out += mask
                    if e < chars.count { out.append(quote) }
                    i = min(e + 1, chars.count)
                } else {
                    var e = i
                    while e < chars.count, !chars[e].isWhitespace, chars[e] != ",", chars[e] != ";",
                          chars[e] != "&", chars[e] != "}", chars[e] != ")" {
                        e += 1
                    }
                    if e > i { out += mask }
                    i = e
                }
                continue
            }
            out.append(chars[i])
            i += 1
        }
        return out
    }

    private static func isKeyChar(_ c: Character) -> Bool {
        c.isLetter || c.isNumber || c == "_" || c == "." || c == "-"
    }

    private static func isSecretKey(_ key: String) -> Bool {
        let lower = key.lowercased()
        // "auth" alone or as a segment (e.g. "redis.auth"), not words like "author".
        let segments = lower.split(whereSeparator: { $0 == "." || $0 == "_" || $0 == "-" }).map(String.init)
        if segments.contains("auth") { return true }
        return secretKeyWords.contains { $0 != "auth" && lower.contains($0) }
    }
}
