import FreshetRedis

extension StreamProcessor {
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
        let settings: [String: RedisEvictionSetting]
        do {
            settings = try control.evictionSettings(onRetry: { [stats] error, attempt in
                stats.redisRetry(error: error, attempt: attempt)
            })
        } catch {
            logger.warning("could not read Redis's eviction policy (INFO memory); make sure it does not evict keys (maxmemory-policy noeviction)",
                           metadata: ["error": "\(error)"])
            return
        }
        let evicting = settings.filter(\.value.evictsKeysWithoutTTL).sorted { $0.key < $1.key }
        guard !evicting.isEmpty else { return }
        let named = evicting.map { "\($0.key) (\($0.value.policy), maxmemory \($0.value.maxmemoryBytes))" }.joined(separator: ", ")
        if topology.redis.allowEviction || evicting.allSatisfy({ $0.value.maxmemoryBytes == 0 }) {
            logger.warning("Redis may evict any key once it reaches maxmemory: features and checkpoints can vanish without an error; set maxmemory-policy noeviction",
                           metadata: ["servers": "\(named)", "allow_eviction": "\(topology.redis.allowEviction)"])
            return
        }
        throw ProcessorError.configuration("Redis may evict any key when it reaches maxmemory: \(named). It would drop features and checkpoint entries without an error, and a task restored from an incomplete checkpoint writes wrong features from then on. Set maxmemory-policy noeviction (Freshet pauses while Redis refuses writes with OOM, and resumes) or a volatile-* policy (Freshet's keys have no TTL), or give Freshet a Redis of its own; to run anyway, set redis.allow_eviction: true in the topology")
    }
}
