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
///
/// Several instances share one result (`SharedVectorSet`): only the refresh
/// leader (the owner of item partition 0, told by `setLeader`) runs mid-run
/// refreshes and publishes each to Redis (once it is its own `latest`); every other instance polls the
/// published version about once a second and loads a newer set, which then
/// becomes `latest` exactly as a local result would.
///
/// Lifecycle: the thread starts with the refresher; `stop` ends it and waits
/// until it has (a refresh in progress finishes first; Redis reads and writes
/// give up at once), and only then closes the refresher's Redis connection,
/// which the thread alone uses before that. So no hiredis context is freed
/// while the thread is inside it, and no BLAS kernel still runs when the
/// process exits.
final class EmbeddingRefresher: @unchecked Sendable {
    struct Job {
        var local: CooccurrenceSnapshot
        /// Checkpoint hashes of item partitions owned elsewhere.
        var remoteKeys: [String]
        /// Rows last seen before this event time are left out (TTL), nil: keep all.
        var cutoff: Int64?
        var final: Bool
        /// The result's version; nil: the latest version + 1.
        var version: Int64? = nil
    }

    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private var pending: Job?
    /// A job is being computed (`running`), or its result is `latest` and
    /// the leader is still writing it for the group (`publishing`).
    private var running = false
    private var publishing = false
    private var stopped = false
    private var current: ItemVectorSet
    private var lastSeconds = 0.0
    private var lastItems = 0
    private var failures: [String] = []
    private var completed = 0
    private var loads = 0
    /// The epoch of `items-0` while this instance owns it (the refresh leader).
    private var leaderEpoch: Int64?
    /// Whether the published set was looked for since start (before the first refresh).
    private var polledOnce = false

    /// Refreshes completed here.
    var refreshes: Int { condition.lock(); defer { condition.unlock() }; return completed }

    /// Sets published by the leader and loaded here.
    var loadedSets: Int { condition.lock(); defer { condition.unlock() }; return loads }

    /// Whether this instance is the refresh leader, and at which epoch of `items-0`
    /// (nil: a follower). Called by the processing thread after each batch.
    func setLeader(epoch: Int64?) {
        condition.lock()
        leaderEpoch = epoch
        condition.unlock()
    }

    var isLeader: Bool { condition.lock(); defer { condition.unlock() }; return leaderEpoch != nil }

    private let config: CooccurrenceConfig
    private let finalIterations: Int
    private let redis: RedisTarget?
    private let shared: SharedVectorSet?
    /// The refresher's own store: used by the refresher thread only, until
    /// `stop` joined it (then closed by `stop`).
    private var connection: (any RedisStore)?
    /// Set by the thread as its last action (guarded by `condition`).
    private var exited = false
    /// Whether `stop` already joined the thread and closed the connection (guarded by `condition`).
    private var joined = false
    /// How often a follower looks for a newer published set.
    static let pollInterval: TimeInterval = 1

    /// - Parameter shared: where the group's result is published and loaded; nil: this instance's own results only.
    init(config: CooccurrenceConfig, finalIterations: Int, redis: RedisTarget?, shared: SharedVectorSet?) {
        self.config = config
        self.finalIterations = finalIterations
        self.redis = redis
        self.shared = redis == nil ? nil : shared
        current = .empty(dimension: config.dimension)
        SpectralRefresh.useOneBLASThread()
        // Strong: the refresher lives at least as long as its thread (`stop` joins it).
        let thread = Thread { [self] in
            self.loop()
            condition.lock()
            exited = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "freshet-refresh"
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

    /// True while a refresh runs or waits, or its result is being published for the group.
    var busy: Bool { condition.lock(); defer { condition.unlock() }; return running || publishing || pending != nil }

    /// Blocks until no refresh runs or waits and the last result is
    /// published for the group; returns at once after `stop` (a job
    /// submitted then never runs).
    func waitUntilIdle() {
        condition.lock()
        while (running || publishing || pending != nil) && !exited { condition.wait() }
        condition.unlock()
    }

    /// Blocks until no refresh runs or waits: `latest` is the last submitted
    /// job's result, whose copy for the group may still be being written
    /// (the end of a bounded run needs the vectors, not the copy). Returns
    /// at once after `stop`.
    func waitUntilComputed() {
        condition.lock()
        while (running || pending != nil) && !exited { condition.wait() }
        condition.unlock()
    }

    /// Whether the refresher's thread has ended (after `stop`).
    var threadExited: Bool { condition.lock(); defer { condition.unlock() }; return exited }

    /// Ends the thread and waits until it has (see the type's Lifecycle), then
    /// closes the Redis connection. Idempotent. Blocking: up to the end of a
    /// refresh in progress.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while !exited { condition.wait() }
        let close = !joined
        joined = true
        condition.unlock()
        // The thread is gone: this is the connection's only user now.
        if close { connection?.close() }
    }

    private func loop() {
        while true {
            condition.lock()
            if pending == nil && !stopped {
                _ = condition.wait(until: Date().addingTimeInterval(Self.pollInterval))
            }
            if stopped { condition.unlock(); return }
            // A follower adopts a newer published set whenever idle; everyone
            // looks once before the first refresh, so a new leader continues
            // from the group's latest result (versions keep rising).
            let look = shared != nil && (!polledOnce || (pending == nil && leaderEpoch == nil))
            condition.unlock()
            if look { adoptPublished() }
            condition.lock()
            // Taken only now: a job submitted meanwhile replaced the one seen above.
            guard let job = pending else { condition.unlock(); continue }
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
                                                 seed: config.seed, version: job.version ?? (previous.version + 1),
                                                 threads: job.final ? SpectralRefresh.finalThreads : 1)
            let seconds = Date().timeIntervalSince(start)

            // The result is this instance's at once; the group's copy is
            // written after. At the end of a bounded run the processing
            // thread waits for the final result (`waitUntilComputed`), and
            // the copy (~25 MiB at 50 k items, 0.07 s on the 3 M-event
            // benchmark) was on that wait. `stop` joins this thread, so the
            // copy is written before the process exits.
            condition.lock()
            current = result
            lastSeconds = seconds
            lastItems = matrix.dimension
            completed += 1
            running = false
            publishing = true
            condition.broadcast()
            condition.unlock()
            publishIfLeader(result)
            condition.lock()
            publishing = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The leader writes its result for the group (fenced by its epoch of `items-0`).
    private func publishIfLeader(_ result: ItemVectorSet) {
        condition.lock()
        let epoch = leaderEpoch
        condition.unlock()
        guard let shared, let epoch, let store = try? store() else { return }
        do {
            if case .fenced(let current) = try shared.publish(result, epoch: epoch, store: store) {
                condition.lock()
                if leaderEpoch == epoch { leaderEpoch = nil }
                failures.append("publishing refresh \(result.version): items-0 is at epoch \(current.map(String.init) ?? "missing") now, not \(epoch) (another instance leads the refreshes)")
                condition.unlock()
            }
        } catch {
            condition.lock(); failures.append("publishing refresh \(result.version): \(error)"); condition.unlock()
        }
    }

    /// Loads the group's published set when it is newer than `current`.
    private func adoptPublished() {
        guard let shared else { return }
        condition.lock()
        let version = current.version
        condition.unlock()
        do {
            let store = try store()
            let loaded = try shared.loadIfNewer(than: version, store: store)
            condition.lock()
            polledOnce = true
            if let loaded, loaded.version > current.version, loaded.dimension == config.dimension {
                current = loaded
                loads += 1
                condition.broadcast()
            }
            condition.unlock()
        } catch {
            condition.lock(); failures.append("loading the published vectors: \(error)"); condition.unlock()
        }
    }

    private func store() throws -> any RedisStore {
        if let connection { return connection }
        guard let redis else { throw ProcessorError.configuration("no Redis for the refresher") }
        let made = try redis.makeStore(shouldStop: { [unowned self] in
            self.condition.lock(); defer { self.condition.unlock() }; return self.stopped
        })
        connection = made
        return made
    }

    /// Rows of one checkpoint hash (field = item id bytes, value = encoded row).
    private func readRows(_ key: String, cutoff: Int64?) throws -> CooccurrenceSnapshot {
        guard redis != nil else { return CooccurrenceSnapshot() }
        let connection = try store()
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
