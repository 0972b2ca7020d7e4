import CoreMetrics
import Foundation
import FreshetKafka
import FreshetRedis
import Logging
import Synchronization

/// The processor's figures, shared between the processing thread (writes),
/// the Redis writer thread, and the admin server and progress line (reads).
/// Everything in here is either a lock-free metric handle or guarded by `state`.
package final class ProcessorStats: WriterObserver, Sendable {
    package let metrics: FreshetMetrics
    /// Records consumed by this instance, all topics (repartition topics included).
    package let recordsConsumed = AtomicCount()
    /// Events read from the source topics by this instance (the progress
    /// line's count and rate: repartition records are not events of their own).
    package let sourceEventsConsumed = AtomicCount()
    /// Owned tasks and their progress, published by the processing thread for `/tasks`.
    package let tasks = TaskBoard()
    let kafkaErrors = AtomicCount()
    var rebalances: CoreMetrics.Counter { metrics.rebalances }
    var fencedWrites: CoreMetrics.Counter { metrics.redisFencedWrites }
    var checkpointFailures: CoreMetrics.Counter { metrics.checkpointFailures }

    struct Shared {
        var totalLag: Int?
        /// The source partitions' share of `totalLag` (the progress line's lag).
        var sourceLag: Int?
        var watermarkMs: Int64?
        var joined = false
        /// When the instance first joined the group (its first assignment).
        var firstJoinedAt: Date?
        var restoring = 0
        /// Why Redis writes do not go through ("redis unreachable", "redis refuses writes (OOM)"), nil when they do.
        var redisProblem: String?
        /// Tasks being rebuilt after the checkpoint store lost them.
        var rebuilding = 0
        /// Set when the processor can no longer run correctly (it is stopping).
        var failure: String?
        /// Benchmarks only (`keepFreshness`): every freshness observation, for percentiles.
        var freshness: LatencyHistogram?
        var lastOutageLog: Double = 0
        /// When the processing thread began waiting for the broker to acknowledge
        /// produced records (a flush), nil when it is not waiting.
        var brokerWaitStarted: Date?
    }
    private let state = Mutex(Shared())

    package init(version: String = FreshetVersion.current) {
        metrics = FreshetMetrics(version: version, librdkafkaVersion: LibrdkafkaVersion.string)
    }

    // MARK: WriterObserver (Redis writer thread)

    package func pipelineCompleted(seconds: Double, commands: Int) {
        metrics.redisPipelineSeconds.record(seconds)
        metrics.redisBatchCommands.record(commands)
    }

    package func freshness(seconds: Double) {
        metrics.freshnessSeconds.record(seconds)
        state.withLock { shared in
            shared.freshness?.record(seconds: seconds)
        }
    }

    /// Called by the writer thread before each back-off sleep. The processing
    /// thread is blocked behind the writer meanwhile, so the log line comes from here.
    package func redisRetry(error: RedisError, attempt: Int) {
        let now = Date().timeIntervalSince1970
        let problem = RedisWriter.describe(error)
        let shouldLog = state.withLock { shared -> Bool in
            shared.redisProblem = problem
            guard now - shared.lastOutageLog >= 5 else { return false }
            shared.lastOutageLog = now
            return true
        }
        if shouldLog {
            Logger(label: "freshet").warning("\(problem): retrying with back-off; consumption is paused and nothing is committed until writes go through",
                                             metadata: ["attempt": "\(attempt)", "error": "\(error)"])
        }
    }

    // MARK: Processing thread

    func checkpointCompleted(seconds: Double, bytes: Int) {
        metrics.checkpointSeconds.record(seconds)
        metrics.checkpointBytes.set(Double(bytes))
    }

    func update(totalLag: Int?, sourceLag: Int?, watermarkMs: Int64?, joined: Bool, redisProblem: String?) {
        state.withLock {
            $0.totalLag = totalLag
            $0.sourceLag = sourceLag
            $0.watermarkMs = watermarkMs
            $0.joined = joined
            $0.redisProblem = redisProblem
        }
    }

    /// How long a flush may wait for broker acknowledgements before `/readyz`
    /// reports it: a frozen or partitioned broker blocks the processing thread
    /// in the flush, where no rebalance callback (a lost session) can run.
    static let brokerWaitReportedAfter: TimeInterval = 3

    /// Brackets a blocking wait for broker acknowledgements (nil: the wait ended).
    func waitingForBroker(since: Date?) { state.withLock { $0.brokerWaitStarted = since } }

    func rebuilding(_ count: Int) { state.withLock { $0.rebuilding = count } }

    /// The processor cannot go on (e.g. the checkpoint store is lost and the
    /// input needed to rebuild it was deleted); `/readyz` says why until it exits.
    func failed(_ reason: String) { state.withLock { $0.failure = reason } }

    func restoring(_ delta: Int) { state.withLock { $0.restoring += delta } }

    /// Called from the assign callback: the instance is a group member from now
    /// on. `update` (once a second, after a batch) would set it too, but if the
    /// first batch blocks (e.g. on a Redis outage) it never runs, and `/readyz`
    /// would keep claiming "not yet joined" for an instance that is consuming.
    func markJoined() {
        let now = Date()
        state.withLock { shared in
            shared.joined = true
            if shared.firstJoinedAt == nil { shared.firstJoinedAt = now }
        }
    }

    /// When this processor first got an assignment from the group (nil before
    /// it has): `freshet bench e2e` reports the wait for it apart, since a new
    /// group's first join waits out the broker's initial rebalance delay
    /// (`group.initial.rebalance.delay.ms`, 3 s by default in Apache Kafka and
    /// measured 3.0 s with Tansu) before any record is read.
    package var firstJoinedAt: Date? { state.withLock { $0.firstJoinedAt } }

    // MARK: Readers

    package var totalLag: Int? { state.withLock { $0.totalLag } }
    package var sourceLag: Int? { state.withLock { $0.sourceLag } }
    package var watermarkMs: Int64? { state.withLock { $0.watermarkMs } }

    /// `/readyz`: joined the group, no task restoring or rebuilding, Redis
    /// reachable and accepting writes, the broker acknowledging produced
    /// records, no fatal condition.
    package var readiness: Readiness {
        let reasons: [String] = state.withLock { shared in
            var reasons: [String] = []
            if !shared.joined { reasons.append("not yet joined the consumer group") }
            if shared.restoring > 0 { reasons.append("restoring \(shared.restoring) task(s) from checkpoints") }
            if let failure = shared.failure { reasons.append(failure) }
            if let problem = shared.redisProblem { reasons.append(problem) }
            if let started = shared.brokerWaitStarted {
                let waited = Date().timeIntervalSince(started)
                if waited >= Self.brokerWaitReportedAfter {
                    reasons.append("broker has not acknowledged produced records for \(Int(waited)) s")
                }
            }
            if shared.rebuilding > 0 {
                reasons.append("checkpoint store lost: rebuilding \(shared.rebuilding) task(s) from the earliest retained offsets")
            }
            return reasons
        }
        return metrics.record(Readiness.from(reasons: reasons))
    }

    /// Benchmarks: record every freshness observation in a latency histogram
    /// (HdrHistogram, 3 significant digits), for percentiles beyond the metric's buckets.
    package func keepFreshness(_ keep: Bool) { state.withLock { $0.freshness = keep ? LatencyHistogram() : nil } }

    /// The freshness recorded since the last call (empty when not kept), and a fresh start.
    package func takeFreshness() -> LatencyHistogram {
        state.withLock { shared in
            guard let taken = shared.freshness else { return LatencyHistogram() }
            shared.freshness = LatencyHistogram()
            return taken
        }
    }
}

package enum FreshetVersion {
    package static let current = "0.1.0"
}
