import Foundation
import FreshetEmbeddings
import FreshetRedis

/// Runs spectral refreshes on a thread of its own, so the processing thread
/// (the feature path) never waits for one, and publishes each result
/// atomically: `latest` switches from one complete `ItemVectorSet` to the next.
///
/// A job is the union of this instance's item tasks' rows (a snapshot taken
/// on the processing thread) and, for item partitions owned by other
/// instances, their rows as last checkpointed in Redis
/// (`freshet:<group>:ckpt:items-<p>:emb`, read here with a connection of the
/// refresher's own). Jobs coalesce: a job submitted while one runs replaces
/// any job still waiting. Mid-run refreshes are warm-started from `latest`;
/// a final refresh (end of a bounded run) starts from the deterministic
/// seeded basis so its result is a function of the rows only, the same in
/// every instance and for any number of instances.
final class EmbeddingRefresher: @unchecked Sendable {
    struct Job {
        var local: CooccurrenceSnapshot
        /// Checkpoint hashes of item partitions owned elsewhere.
        var remoteKeys: [String]
        /// Rows last seen before this event time are left out (TTL), nil: keep all.
        var cutoff: Int64?
        var final: Bool
    }

    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private var pending: Job?
    private var running = false
    private var stopped = false
    private var current: ItemVectorSet
    private var lastSeconds = 0.0
    private var lastItems = 0
    private var failures: [String] = []
    private var completed = 0

    /// Refreshes completed.
    var refreshes: Int { condition.lock(); defer { condition.unlock() }; return completed }

    private let config: CooccurrenceConfig
    private let finalIterations: Int
    private let redis: RedisTarget?
    private var connection: (any RedisStore)?
    private var thread: Thread?

    init(config: CooccurrenceConfig, finalIterations: Int, redis: RedisTarget?) {
        self.config = config
        self.finalIterations = finalIterations
        self.redis = redis
        current = .empty(dimension: config.dimension)
        SpectralRefresh.useOneBLASThread()
        let thread = Thread { [unowned self] in self.loop() }
        thread.name = "freshet-refresh"
        self.thread = thread
        thread.start()
    }

    /// The latest complete result (version 0: none yet).
    var latest: ItemVectorSet { condition.lock(); defer { condition.unlock() }; return current }

    /// (seconds, items) of the last refresh.
    var lastRefresh: (seconds: Double, items: Int) { condition.lock(); defer { condition.unlock() }; return (lastSeconds, lastItems) }

    /// Errors since the last call (reading remote rows), for the log.
    func takeFailures() -> [String] { condition.lock(); defer { condition.unlock() }; let f = failures; failures = []; return f }

    /// Queues a refresh (replacing one still waiting). Never blocks on a running refresh.
    func submit(_ job: Job) {
        condition.lock()
        pending = job
        condition.signal()
        condition.unlock()
    }

    /// True while a refresh runs or waits.
    var busy: Bool { condition.lock(); defer { condition.unlock() }; return running || pending != nil }

    /// Blocks until no refresh runs or waits (end of a bounded run).
    func waitUntilIdle() {
        condition.lock()
        while running || pending != nil { condition.wait() }
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
        connection?.close()
    }

    private func loop() {
        while true {
            condition.lock()
            while pending == nil && !stopped { condition.wait() }
            if stopped { condition.unlock(); return }
            let job = pending!
            pending = nil
            running = true
            let previous = current
            condition.unlock()

            let start = Date()
            var parts = [job.local]
            for key in job.remoteKeys {
                do { parts.append(try readRows(key, cutoff: job.cutoff)) } catch {
                    condition.lock(); failures.append("reading \(key): \(error)"); condition.unlock()
                }
            }
            let matrix = SymmetricSparseMatrix(CooccurrenceSnapshot.merged(parts))
            let warm = !job.final && previous.version > 0
            let result = SpectralRefresh.refresh(matrix, dimension: config.dimension, previous: warm ? previous : nil,
                                                 iterations: job.final ? finalIterations : (warm ? config.warmIterations : config.coldIterations),
                                                 seed: config.seed, version: previous.version + 1)
            let seconds = Date().timeIntervalSince(start)

            condition.lock()
            current = result
            lastSeconds = seconds
            lastItems = matrix.dimension
            completed += 1
            running = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Rows of one checkpoint hash (field = item id bytes, value = encoded row).
    private func readRows(_ key: String, cutoff: Int64?) throws -> CooccurrenceSnapshot {
        guard let redis else { return CooccurrenceSnapshot() }
        if connection == nil { connection = try redis.makeStore(shouldStop: { false }) }
        guard let connection else { return CooccurrenceSnapshot() }
        var builder = CooccurrenceSnapshot.Builder()
        try connection.scanHash(key) { field, value in
            let row = try CooccurrenceSnapshot.decodeRow(value)
            if cutoff.map({ row.lastSeen >= $0 }) ?? true {
                builder.addRow(item: ByteId(bytes: field), degree: row.degree, entries: row.entries)
            }
        }
        return builder.snapshot
    }
}
