import Synchronization

/// A count shared between threads that is not a Prometheus series (e.g. the
/// progress line's records consumed). One relaxed atomic add per `add`.
package final class AtomicCount: Sendable {
    private let storage = Atomic<Int>(0)

    package init() {}

    /// Adds `amount` (not negative).
    @inline(__always)
    package func add(_ amount: Int) { storage.wrappingAdd(amount, ordering: .relaxed) }

    package var value: Int { storage.load(ordering: .relaxed) }
}
