import Synchronization

/// A count shared between threads that is not a Prometheus series (e.g. the
/// progress line's records consumed). One relaxed atomic add per `add`.
public final class AtomicCount: Sendable {
    private let storage = Atomic<Int>(0)

    public init() {}

    /// Adds `amount` (not negative).
    @inline(__always)
    public func add(_ amount: Int) { storage.wrappingAdd(amount, ordering: .relaxed) }

    public var value: Int { storage.load(ordering: .relaxed) }
}
