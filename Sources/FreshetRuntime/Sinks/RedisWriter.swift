import Foundation
import FreshetRedis

/// Writes tasks' fenced batches to Redis on a thread of its own, so the
/// processing thread computes the next batch while this one is in flight.
///
/// Batches are written in submission order, as optimistic transactions
/// guarded by each task's epoch (`FencedTransaction`; on a Redis Cluster,
/// one script call per task and slot, see `ClusterFencing`; a task's parts
/// are answered as one `FencedWriteReply`). On a connection failure or a transient refusal
/// (`OOM`, `READONLY`, `LOADING`, ... see `RedisError.transientServerPrefixes`)
/// the writer retries with back-off and resends the whole batch (every write
/// is an absolute value, so resending is harmless); meanwhile the bounded
/// queue fills and `submit` blocks, which pauses consumption: an outage or a
/// refusal pauses, it never drops data.
///
/// A key Redis refuses for good (e.g. `WRONGTYPE`) is skipped and
/// reported (`Report.rejectedKeys`); the rest of the batch lands.
///
/// Abandoning: when retrying stops (the processor is stopping, `giveUp()`
/// returned true) or the pipeline fails for good (e.g. authentication), the
/// writer abandons that batch and every later one without writing them, for
/// the rest of its life, and says so in `abandonedReason`. Their effects are
/// not in Redis, so the processor must not checkpoint or commit past them.
///
/// Lifecycle: `start` starts the thread; `stop` writes what is queued, joins
/// the thread and only then closes the store, so no hiredis context is freed
/// while the thread may still use it (and nothing the thread touches outlives
/// the process's orderly exit).
///
/// Thread-safety: all mutable state is guarded by `condition`; the Redis
/// connection is touched only by the writer thread until it was joined (then
/// by `stop`'s caller, to close it). Hence `@unchecked Sendable`.
package final class RedisWriter: @unchecked Sendable {
    package struct Batch: Sendable {
        package var writes: [FencedWrite]
        /// Event times of a sample of the written keys, for the freshness histogram.
        package var eventTimeSamples: [Int64]
        package init(writes: [FencedWrite], eventTimeSamples: [Int64] = []) {
            self.writes = writes
            self.eventTimeSamples = eventTimeSamples
        }

        /// Encoded size of the batch's commands (what the pipeline copies).
        package var byteCount: Int { writes.reduce(0) { $0 + $1.byteCount } }
    }

    /// What the writer observed, read by the processing thread.
    package struct Report: Sendable {
        /// Tasks whose write was refused by the epoch check, with the epoch the
        /// refused write carried and the epoch Redis holds (nil: the key is missing).
        package var fencedTasks: [(task: TaskId, epoch: Int64, current: Int64?)] = []
        /// Keys Redis refused for good; the other operations of their writes landed.
        package var rejectedKeys: [(task: TaskId, checkpoint: Bool, key: FencedWriteReply.RejectedKey)] = []
        /// Tasks whose checkpoint write did not fully land (a rejected key or a failed reply).
        package var failedCheckpoints: Set<TaskId> = []
        package var failures: [String] = []
    }

    private let condition = NSCondition()
    private var queue: [(ticket: UInt64, batch: Batch, bytes: Int)] = []
    /// Encoded bytes of the batches in `queue`.
    private var queuedBytes = 0
    private var nextTicket: UInt64 = 1
    private var acknowledgedTicket: UInt64 = 0
    private var stopping = false
    private var problem: RedisError?
    private var abandoned: String?
    private var abandonedWith: RedisError?
    private var report = Report()
    private var refusedWrites = 0
    private let maxQueuedBatches: Int
    /// Bounds on memory: `submit` waits while the queue holds this many
    /// encoded bytes (and at least one batch), and one pipeline carries at
    /// most `maxPipelineBytes` of batches (at least one batch). Each byte of
    /// a pipeline is held three times while it is written (the tasks'
    /// commands, the pipeline's buffer, hiredis's output buffer); without
    /// these bounds a burst of large flushes (a full republication of user
    /// vectors: ~5 MiB a task a flush) queued up to 64 batches and the
    /// writer then copied them all into one pipeline (the embeddings run's
    /// peak RSS: +150 MiB for a few seconds at 1 M events).
    private let maxQueuedBytes: Int
    private let maxPipelineBytes: Int
    package static let defaultMaxQueuedBytes = 8 << 20
    package static let defaultMaxPipelineBytes = 8 << 20
    private let redis: any RedisStore
    /// Set on a Redis Cluster: writes are split by slot (`ClusterFencing`).
    private let cluster: (store: ClusterRedis, keys: RedisKeys)?
    private let script = FencedWrite.redisScript
    private let observer: WriterObserver
    /// The writer thread while it runs (guarded by `condition`); nil before
    /// `start` and once `stop` joined it (which also breaks the thread's
    /// strong reference to `self`).
    private var thread: Thread?
    /// Set by the writer thread as its last action under `condition`.
    private var threadExited = false

    package convenience init(endpoint: RedisEndpoint, maxQueuedBatches: Int = 64, observer: WriterObserver,
                            giveUp: @escaping @Sendable () -> Bool = { false }) throws(RedisError) {
        try self.init(target: .single(endpoint), keys: nil, maxQueuedBatches: maxQueuedBatches, observer: observer, giveUp: giveUp)
    }

    /// - Parameters:
    ///   - keys: the key layout; required on a cluster (its slot fences).
    ///   - giveUp: asked between retries; true abandons the batch in
    ///     flight (the processor is stopping: SIGTERM while Redis refuses writes).
    package convenience init(target: RedisTarget, keys: RedisKeys?, maxQueuedBatches: Int = 64, observer: WriterObserver,
                giveUp: @escaping @Sendable () -> Bool = { false }) throws(RedisError) {
        try self.init(store: target.makeStore(), keys: keys, maxQueuedBatches: maxQueuedBatches, observer: observer, giveUp: giveUp)
    }

    /// A writer over a store made by the caller (the engine's `EngineConnections`).
    /// - Parameter store: used by the writer's thread only from now on.
    package init(store: any RedisStore, keys: RedisKeys?, maxQueuedBatches: Int = 64,
                maxQueuedBytes: Int = RedisWriter.defaultMaxQueuedBytes, maxPipelineBytes: Int = RedisWriter.defaultMaxPipelineBytes,
                observer: WriterObserver, giveUp: @escaping @Sendable () -> Bool = { false }) throws(RedisError) {
        self.redis = store
        if let store = redis as? ClusterRedis {
            guard let keys, keys.hashTagged else {
                throw RedisError(kind: .invalidArgument, message: "a cluster needs hash-tagged task keys", context: "RedisWriter")
            }
            self.cluster = (store, keys)
            store.registerScript(ClusterFencing.redisScript)
        } else {
            self.cluster = nil
        }
        self.maxQueuedBatches = maxQueuedBatches
        self.maxQueuedBytes = maxQueuedBytes
        self.maxPipelineBytes = maxPipelineBytes
        self.observer = observer
        self.redis.registerScript(script)
        // Retrying stops when the processor stops with Redis still gone or refusing.
        self.redis.shouldStop = { [weak self] in (self?.isStopping ?? true) || giveUp() }
    }

    package func start() {
        condition.lock()
        defer { condition.unlock() }
        guard thread == nil, !stopping else { return }
        // Strong: the writer lives at least as long as its thread (`stop` joins it).
        let thread = Thread { [self] in
            self.run()
            condition.lock()
            threadExited = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "freshet-redis-writer"
        self.thread = thread
        thread.start()
    }

    /// Queues a batch; blocks while the queue is full (`maxQueuedBatches`
    /// batches, or `maxQueuedBytes` of them: back-pressure during outages and
    /// bursts of large flushes). Returns a ticket for `waitUntilAcknowledged`.
    @discardableResult
    package func submit(_ batch: Batch) -> UInt64 {
        let bytes = batch.byteCount
        condition.lock()
        defer { condition.unlock() }
        while (queue.count >= maxQueuedBatches || (!queue.isEmpty && queuedBytes >= maxQueuedBytes)) && !stopping {
            condition.wait()
        }
        let ticket = nextTicket
        nextTicket += 1
        queue.append((ticket, batch, bytes))
        queuedBytes += bytes
        condition.broadcast()
        return ticket
    }

    /// Blocks until every batch submitted so far is acknowledged by Redis.
    package func waitUntilDrained() {
        condition.lock()
        defer { condition.unlock() }
        let target = nextTicket - 1
        while acknowledgedTicket < target && !stopping {
            condition.wait()
        }
    }

    /// True when the last write attempt reached Redis and was accepted (readiness).
    package var isHealthy: Bool {
        condition.lock(); defer { condition.unlock() }
        return problem == nil && abandoned == nil
    }

    /// Why the writer is not healthy, for `/readyz`: nil when healthy.
    package var unhealthyReason: String? {
        condition.lock(); defer { condition.unlock() }
        if let abandoned { return "redis writes abandoned: \(abandoned)" }
        guard let problem else { return nil }
        return Self.describe(problem)
    }

    /// "redis unreachable" for connection trouble, "redis refuses writes (OOM)"
    /// for a server that answers but refuses.
    package static func describe(_ error: RedisError) -> String {
        if case .server(let prefix) = error.kind { return "redis refuses writes (\(prefix))" }
        return "redis unreachable"
    }

    /// Set once a batch was abandoned (see the type's comment): nothing
    /// submitted since was written either.
    package var abandonedReason: String? {
        condition.lock(); defer { condition.unlock() }
        return abandoned
    }

    /// The Redis error that made the writer give up (nil: not abandoned, or
    /// abandoned because the process is stopping).
    package var abandonedError: RedisError? {
        condition.lock(); defer { condition.unlock() }
        return abandonedWith
    }

    /// Writes refused by their epoch check so far (a zombie's, or after a store loss).
    package var refusedWriteCount: Int {
        condition.lock(); defer { condition.unlock() }
        return refusedWrites
    }

    package var pendingBatches: Int {
        condition.lock(); defer { condition.unlock() }
        return queue.count
    }

    /// Fenced tasks and failures seen since the last call.
    package func takeReport() -> Report {
        condition.lock(); defer { condition.unlock() }
        let current = report
        report = Report()
        return current
    }

    /// Writes what is queued (or abandons it, see the type), stops the thread
    /// and waits until it has ended, then closes the store's connection.
    /// Idempotent; blocking (for as long as the last pipeline takes).
    package func stop() {
        waitUntilDrained()
        condition.lock()
        stopping = true
        condition.broadcast()
        // Join: the thread may still be inside the store (a pipeline, a
        // back-off sleep) after the queue drained; the store must not be
        // closed, nor its owner freed, before it is out.
        while thread != nil && !threadExited { condition.wait() }
        let joined = thread != nil
        thread = nil
        condition.unlock()
        if joined { redis.close() }
    }

    /// Whether the writer thread is running (started and not yet joined by `stop`).
    package var isRunning: Bool {
        condition.lock(); defer { condition.unlock() }
        return thread != nil && !threadExited
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping { condition.unlock(); return }
            // One pipeline carries the batches queued first, up to
            // `maxPipelineBytes` (at least one batch).
            var count = 0
            var bytes = 0
            while count < queue.count, count == 0 || bytes + queue[count].bytes <= maxPipelineBytes {
                bytes += queue[count].bytes
                count += 1
            }
            let taken = queue[..<count].map { (ticket: $0.ticket, batch: $0.batch) }
            queue.removeFirst(count)
            queuedBytes -= bytes
            condition.broadcast()
            condition.unlock()

            let writes = taken.flatMap { $0.batch.writes }
            let started = DispatchTime.now().uptimeNanoseconds
            let outcome = isAbandoned ? .abandoned : write(writes)
            let ackWallMs = Int64(Date().timeIntervalSince1970 * 1000)
            observer.pipelineCompleted(seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9,
                                       commands: writes.count)
            for (_, batch) in taken {
                for ts in batch.eventTimeSamples { observer.freshness(seconds: Double(ackWallMs - ts) / 1000) }
            }

            condition.lock()
            switch outcome {
            case .written(let written):
                problem = nil
                report.fencedTasks.append(contentsOf: written.fencedTasks)
                refusedWrites += written.fencedTasks.count
                report.rejectedKeys.append(contentsOf: written.rejectedKeys)
                report.failedCheckpoints.formUnion(written.failedCheckpoints)
                report.failures.append(contentsOf: written.failures)
            case .abandoned:
                break
            case .gaveUp(let error):
                abandoned = "\(Self.describe(error)): \(error.message)"
                abandonedWith = error
                report.failures.append("abandoned \(writes.count) write(s) without writing them: \(error)")
            }
            if let last = taken.last { acknowledgedTicket = last.ticket }
            condition.broadcast()
            condition.unlock()
        }
    }

    private enum Outcome {
        case written(Report)
        /// Retrying stopped or the pipeline failed for good: nothing of this batch counts as written.
        case gaveUp(RedisError)
        /// An earlier batch was abandoned: this one was not attempted.
        case abandoned
    }

    private var isAbandoned: Bool {
        condition.lock(); defer { condition.unlock() }
        return abandoned != nil
    }

    private func write(_ writes: [FencedWrite]) -> Outcome {
        guard !writes.isEmpty else { return .written(Report()) }
        if let cluster { return writeToCluster(writes, cluster.store, cluster.keys) }
        let replies: [FencedWriteReply]
        do {
            // Transient refusals (OOM, READONLY, ...) and lost connections are
            // retried inside, the whole group again (every write is absolute).
            replies = try FencedTransaction.apply(writes, through: redis, onRetry: { [self] error, attempt in
                self.setProblem(error)
                self.observer.redisRetry(error: error, attempt: attempt)
            })
        } catch {
            return .gaveUp(error)
        }
        return .written(Self.report(writes, replies))
    }

    /// On a cluster: each write split by slot (one script per slot, all
    /// pipelined per node), the parts' replies combined per write.
    private func writeToCluster(_ writes: [FencedWrite], _ store: ClusterRedis, _ keys: RedisKeys) -> Outcome {
        var commands: [ClusterCommand] = []
        var parts: [Range<Int>] = []
        for write in writes {
            let start = commands.count
            do {
                commands.append(contentsOf: try ClusterFencing.commands(for: write, keys: keys))
            } catch {
                return .gaveUp(error)
            }
            parts.append(start..<commands.count)
        }
        let replies: [RedisReply]
        do {
            replies = try store.execute(commands, onRetry: { [self] error, attempt in
                self.setProblem(error)
                self.observer.redisRetry(error: error, attempt: attempt)
            })
        } catch {
            return .gaveUp(error)
        }
        return .written(Self.report(writes, parts.map { range in
            ClusterFencing.combine(range.map { FencedWriteReply(replies[$0]) })
        }))
    }

    private static func report(_ writes: [FencedWrite], _ replies: [FencedWriteReply]) -> Report {
        var report = Report()
        for (write, reply) in zip(writes, replies) {
            switch reply {
            case .applied(let rejected):
                for key in rejected { report.rejectedKeys.append((write.task, write.isCheckpoint, key)) }
                if write.isCheckpoint && !rejected.isEmpty { report.failedCheckpoints.insert(write.task) }
            case .refusedByEpoch(let current):
                report.fencedTasks.append((write.task, write.epoch, current))
                if write.isCheckpoint { report.failedCheckpoints.insert(write.task) }
            case .failed(let message):
                report.failures.append("task \(write.task): \(message)")
                if write.isCheckpoint { report.failedCheckpoints.insert(write.task) }
            }
        }
        return report
    }

    private var isStopping: Bool {
        condition.lock(); defer { condition.unlock() }
        return stopping
    }

    private func setProblem(_ error: RedisError?) {
        condition.lock(); problem = error; condition.unlock()
    }
}

/// Receives what the writer measures (metrics live elsewhere).
package protocol WriterObserver: Sendable {
    func pipelineCompleted(seconds: Double, commands: Int)
    func freshness(seconds: Double)
    /// Before each back-off sleep of a refused or failed write.
    func redisRetry(error: RedisError, attempt: Int)
}
