import Foundation
import Synchronization

/// A counter the processing thread bumps and other threads (progress line,
/// `/metrics`) read.
public final class StatCounter: Sendable {
    private let storage = Atomic<Int>(0)
    public init() {}
    public func increment(by amount: Int = 1) { storage.add(amount, ordering: .relaxed) }
    public var value: Int { storage.load(ordering: .relaxed) }
}

/// The processor's own figures: what the progress line and the metrics endpoint show.
public final class ProcessorStats: WriterObserver, @unchecked Sendable {
    public let recordsConsumed = StatCounter()
    public let kafkaErrors = StatCounter()
    public let rebalances = StatCounter()
    public let fencedWrites = StatCounter()
    public let checkpointFailures = StatCounter()
    public let checkpoints = StatCounter()
    public let redisRetries = StatCounter()

    // Guarded by `lock`: written by the processing or writer thread, read by the admin thread.
    private let lock = NSLock()
    private var _freshness: [Double] = []
    private var _pipelineSeconds: [Double] = []
    private var _lastCheckpointSeconds: Double = 0
    private var _lastCheckpointBytes = 0
    public var assignedPartitions = 0

    public init() {}

    public func pipelineCompleted(seconds: Double, commands: Int) {
        lock.lock(); defer { lock.unlock() }
        if _pipelineSeconds.count < 100_000 { _pipelineSeconds.append(seconds) }
    }

    public func freshness(seconds: Double) {
        lock.lock(); defer { lock.unlock() }
        if _freshness.count < 1_000_000 { _freshness.append(seconds) }
    }

    public func redisRetry(error: String, attempt: Int) { redisRetries.increment() }

    func checkpointCompleted(seconds: Double, bytes: Int) {
        checkpoints.increment()
        lock.lock(); defer { lock.unlock() }
        _lastCheckpointSeconds = seconds
        _lastCheckpointBytes = bytes
    }

    /// Freshness samples (event time to Redis acknowledgement), taken and cleared.
    public func takeFreshnessSamples() -> [Double] {
        lock.lock(); defer { lock.unlock() }
        defer { _freshness.removeAll() }
        return _freshness
    }

    func updateGauges(from processor: StreamProcessor, nowMs: Int64) {}
}
