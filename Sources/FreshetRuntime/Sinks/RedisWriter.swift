import Foundation
import FreshetRedis

/// Writes tasks' fenced batches to Redis on a thread of its own, so the
/// processing thread computes the next batch while this one is in flight.
///
/// Batches are written in submission order, pipelined, each as one atomic
/// script call per task. On a connection failure the writer reconnects with
/// back-off and resends the whole batch (every write is an absolute value, so
/// resending is harmless); meanwhile the bounded queue fills and `submit`
/// blocks, which pauses consumption: an outage pauses, it never drops data.
///
/// Thread-safety: all mutable state is guarded by `condition`; the Redis
/// connection is touched only by the writer thread. Hence `@unchecked Sendable`.
public final class RedisWriter: @unchecked Sendable {
    public struct Batch: Sendable {
        public var writes: [FencedWrite]
        /// Event times of a sample of the written keys, for the freshness histogram.
        public var eventTimeSamples: [Int64]
        public init(writes: [FencedWrite], eventTimeSamples: [Int64] = []) {
            self.writes = writes
            self.eventTimeSamples = eventTimeSamples
        }
    }

    /// What the writer observed, read by the processing thread.
    public struct Report: Sendable {
        /// Tasks whose write was refused, with the epoch the refused write carried.
        public var fencedTasks: [(task: TaskId, epoch: Int64)] = []
        public var failures: [String] = []
    }

    private let condition = NSCondition()
    private var queue: [(ticket: UInt64, batch: Batch)] = []
    private var nextTicket: UInt64 = 1
    private var acknowledgedTicket: UInt64 = 0
    private var stopping = false
    private var healthy = true
    private var report = Report()
    private let maxQueuedBatches: Int
    private let redis: ReconnectingRedis
    private let script = FencedWrite.redisScript
    private let observer: WriterObserver
    private var thread: Thread?

    public init(endpoint: RedisEndpoint, maxQueuedBatches: Int = 64, observer: WriterObserver) throws(RedisError) {
        self.redis = try ReconnectingRedis(endpoint: endpoint)
        self.maxQueuedBatches = maxQueuedBatches
        self.observer = observer
        self.redis.registerScript(script)
        // Retrying stops only when the processor shuts down with Redis still gone.
        self.redis.shouldStop = { [weak self] in self?.isStopping ?? true }
    }

    public func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "freshet-redis-writer"
        self.thread = thread
        thread.start()
    }

    /// Queues a batch; blocks while the queue is full (back-pressure during outages).
    /// Returns a ticket for `waitUntilAcknowledged`.
    @discardableResult
    public func submit(_ batch: Batch) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= maxQueuedBatches && !stopping {
            condition.wait()
        }
        let ticket = nextTicket
        nextTicket += 1
        queue.append((ticket, batch))
        condition.broadcast()
        return ticket
    }

    /// Blocks until every batch submitted so far is acknowledged by Redis.
    public func waitUntilDrained() {
        condition.lock()
        defer { condition.unlock() }
        let target = nextTicket - 1
        while acknowledgedTicket < target && !stopping {
            condition.wait()
        }
    }

    /// True when the last write attempt reached Redis (readiness).
    public var isHealthy: Bool {
        condition.lock(); defer { condition.unlock() }
        return healthy
    }

    public var pendingBatches: Int {
        condition.lock(); defer { condition.unlock() }
        return queue.count
    }

    /// Fenced tasks and failures seen since the last call.
    public func takeReport() -> Report {
        condition.lock(); defer { condition.unlock() }
        let current = report
        report = Report()
        return current
    }

    /// Writes what is queued, then stops the thread.
    public func stop() {
        waitUntilDrained()
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty && stopping { condition.unlock(); return }
            // Take everything queued: one pipeline carries several batches.
            let taken = queue
            queue.removeAll(keepingCapacity: true)
            condition.broadcast()
            condition.unlock()

            let writes = taken.flatMap { $0.batch.writes }
            let started = DispatchTime.now().uptimeNanoseconds
            let outcome = write(writes)
            let ackWallMs = Int64(Date().timeIntervalSince1970 * 1000)
            observer.pipelineCompleted(seconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9,
                                       commands: writes.count)
            for (_, batch) in taken {
                for ts in batch.eventTimeSamples { observer.freshness(seconds: Double(ackWallMs - ts) / 1000) }
            }

            condition.lock()
            switch outcome {
            case .written(let fenced, let failures):
                healthy = true
                report.fencedTasks.append(contentsOf: fenced)
                report.failures.append(contentsOf: failures)
            case .stopped:
                break
            }
            if let last = taken.last { acknowledgedTicket = last.ticket }
            condition.broadcast()
            condition.unlock()
        }
    }

    private enum Outcome {
        case written(fenced: [(task: TaskId, epoch: Int64)], failures: [String])
        case stopped
    }

    private func write(_ writes: [FencedWrite]) -> Outcome {
        guard !writes.isEmpty else { return .written(fenced: [], failures: []) }
        var pipeline = RedisPipeline()
        for write in writes {
            pipeline.add(write.command)
        }
        do {
            let replies: [RedisReply]
            do {
                replies = try redis.execute(pipeline, onRetry: { [self] error, attempt in
                    self.setHealthy(false)
                    self.observer.redisRetry(error: "\(error)", attempt: attempt)
                })
            } catch {
                return .stopped
            }
            // (A restarted Redis has an empty script cache: ReconnectingRedis reloads
            // the script and resends the pipeline, which is idempotent.)
            var fenced: [(task: TaskId, epoch: Int64)] = []
            var failures: [String] = []
            for (write, reply) in zip(writes, replies) {
                guard let message = reply.errorMessage else { continue }
                if message.hasPrefix("FENCED") {
                    fenced.append((write.task, write.epoch))
                } else {
                    failures.append("task \(write.task): \(message)")
                }
            }
            return .written(fenced: fenced, failures: failures)
        }
    }

    private var isStopping: Bool {
        condition.lock(); defer { condition.unlock() }
        return stopping
    }

    private func setHealthy(_ value: Bool) {
        condition.lock(); healthy = value; condition.unlock()
    }
}

/// Receives what the writer measures (metrics live elsewhere).
public protocol WriterObserver: Sendable {
    func pipelineCompleted(seconds: Double, commands: Int)
    func freshness(seconds: Double)
    func redisRetry(error: String, attempt: Int)
}
