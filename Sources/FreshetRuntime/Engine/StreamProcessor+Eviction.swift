import FreshetRedis

extension StreamProcessor {
    /// How often a running processor reads Redis's eviction settings again, ms.
    static let evictionCheckIntervalMs: Int64 = 5_000

    /// Refuses a Redis that may evict any key when it reaches `maxmemory` (an
    /// `allkeys-*` policy with a limit set): it would drop features, and
    /// checkpoint entries, without an error to anyone, and a task restored
    /// from a checkpoint that lost entries writes wrong features from then
    /// on. `volatile-*` policies evict only keys with a TTL, which Freshet's
    /// keys do not have; `noeviction` refuses writes instead (`OOM`: Freshet
    /// pauses and resumes). `redis.allow_eviction: true` runs anyway, with a
    /// warning. An `allkeys-*` policy without a limit evicts nothing yet: a
    /// warning. A Redis that does not answer `INFO memory` (a proxy that
    /// blocks it) is run on with a warning.
    /// - Throws: `ProcessorError.configuration` naming the servers and the fixes.
    func checkEviction() throws {
        lastEvictionCheckMs = clockNowMs()
        let settings: [String: RedisEvictionSetting]
        do { settings = try readEvictionSettings() } catch {
            logger.warning("could not read Redis's eviction policy (INFO memory); make sure it does not evict keys (maxmemory-policy noeviction)",
                           metadata: ["error": "\(error)"])
            return
        }
        switch judgeEviction(settings) {
        case .safe: return
        case .warn(let message): logger.warning("\(message)")
        case .refuse(let reason): throw ProcessorError.configuration(reason)
        }
    }

    /// Every `evictionCheckIntervalMs` while running: the same judgement as
    /// at start, since an operator's `CONFIG SET maxmemory-policy` (or a
    /// failover to a differently configured replica) changes it without a
    /// restart. A refusal stops the run with a configuration error at the
    /// next turn of the loop (its state is checkpointed as at any stop, and
    /// the next start refuses the same settings); a warning is logged once
    /// per change. An unreadable `INFO` only skips the check.
    func watchEviction(nowMs: Int64) {
        // During an outage the writer reports and waits; INFO would only wait too.
        guard nowMs - lastEvictionCheckMs >= Self.evictionCheckIntervalMs, writer.isHealthy else { return }
        lastEvictionCheckMs = nowMs
        guard let settings = try? readEvictionSettings() else { return }
        switch judgeEviction(settings) {
        case .safe:
            evictionWarning = nil
        case .warn(let message):
            if evictionWarning != message { logger.warning("\(message)") }
            evictionWarning = message
        case .refuse(let reason):
            fatalError = fatalError ?? ProcessorError.configuration("Redis's eviction settings changed while running: \(reason)")
        }
    }

    /// What the eviction settings of every server mean for the run.
    enum EvictionVerdict: Equatable {
        case safe
        case warn(String)
        case refuse(String)
    }

    func judgeEviction(_ settings: [String: RedisEvictionSetting]) -> EvictionVerdict {
        let evicting = settings.filter(\.value.evictsKeysWithoutTTL).sorted { $0.key < $1.key }
        guard !evicting.isEmpty else { return .safe }
        let named = evicting.map { "\($0.key) (\($0.value.policy), maxmemory \($0.value.maxmemoryBytes))" }.joined(separator: ", ")
        if topology.redis.allowEviction || evicting.allSatisfy({ $0.value.maxmemoryBytes == 0 }) {
            return .warn("Redis may evict any key once it reaches maxmemory: features and checkpoints can vanish without an error; set maxmemory-policy noeviction (servers: \(named); redis.allow_eviction: \(topology.redis.allowEviction))")
        }
        return .refuse("Redis may evict any key when it reaches maxmemory: \(named). It would drop features and checkpoint entries without an error, and a task restored from an incomplete checkpoint writes wrong features from then on. Set maxmemory-policy noeviction (Freshet pauses while Redis refuses writes with OOM, and resumes) or a volatile-* policy (Freshet's keys have no TTL), or give Freshet a Redis of its own; to run anyway, set redis.allow_eviction: true in the topology")
    }

    /// Every server's eviction settings (`INFO memory`).
    /// - Throws: `RedisError` when Redis does not answer it (a proxy that blocks `INFO`).
    private func readEvictionSettings() throws(RedisError) -> [String: RedisEvictionSetting] {
        try control.evictionSettings(onRetry: { [stats] error, attempt in stats.redisRetry(error: error, attempt: attempt) })
    }
}
