import FreshetEmbeddings
import FreshetRedis

/// One refresh result for the whole consumer group: the refresh leader (the
/// owner of item partition 0) publishes each result it computes to Redis, and
/// every instance loads it, so all instances publish the same vectors under
/// the same `embedding_version` mid-run, not only at the end of a bounded run.
///
/// Layout (task keys of `items-0`, so on a cluster they share its slot):
/// - the data hash `…:embset:items-0:<epoch>-<version>`: field `header` and
///   fields `0`…`n-1`, the chunks of `ItemVectorSet.encoded()`;
/// - the pointer hash `…:embset:items-0`: fields `version` and `data` (the
///   data hash's name), switched by a `FencedWrite` at the leader's epoch of
///   `items-0`, so a leader that lost the partition can no longer switch it.
///
/// A superseded data hash expires `retainMs` after the switch (a reader that
/// is still loading it has that long). The result also survives a restart:
/// a restarted instance loads it before its first refresh, so restored item
/// tasks serve vectors at once.
///
/// Threading: used by the refresher's thread only (its own connection).
struct SharedVectorSet {
    let keys: RedisKeys
    var retainMs: Int64 = 600_000

    static let leaderTask = TaskId(stage: .items, partition: 0)

    enum PublishOutcome: Equatable {
        case published
        /// The epoch check failed: another instance owns `items-0` now.
        case fenced(current: Int64?)
    }

    var pointerKey: String { keys.embeddingSet(Self.leaderTask, data: nil) }

    /// Writes `set` and switches the pointer to it (fenced by `epoch` of `items-0`).
    /// - Throws: `RedisError` when Redis stays unreachable (retried by the store until it gives up).
    func publish(_ set: ItemVectorSet, epoch: Int64, store: any RedisStore) throws -> PublishOutcome {
        let dataKey = keys.embeddingSet(Self.leaderTask, data: "\(epoch)-\(set.version)")
        var (header, chunks) = set.encoded()
        var pipeline = RedisPipeline()
        pipeline.add(RedisCommand("DEL", dataKey))
        var first = RedisCommand("HSET", dataKey, "header")
        first.append(header)
        pipeline.add(first)
        for reply in try store.execute(pipeline, onRetry: { _, _ in }) {
            _ = try reply.checked(context: "writing the vector set \(dataKey)")
        }
        // One chunk (at most 4 MiB) a command, each freed once sent: the set
        // is ~25 MiB at 50 k items, and one pipeline of every chunk held it
        // three more times (commands, pipeline buffer, hiredis's buffer)
        // while the end of a bounded run republished every user.
        for n in chunks.indices {
            var command = RedisCommand("HSET", dataKey, String(n))
            command.append(chunks[n])
            chunks[n] = []
            _ = try store.run(command).checked(context: "writing the vector set \(dataKey)")
        }
        let previous = try store.run(RedisCommand("HGET", pointerKey, "data")).string
        var write = FencedWrite(task: Self.leaderTask, epochKey: keys.epoch(Self.leaderTask), epoch: epoch)
        write.hashSet(pointerKey, [("version", String(set.version)), ("data", dataKey)])
        store.registerScript(FencedWrite.redisScript)
        let reply = FencedWriteReply(try store.run(write.command))
        switch reply {
        case .applied:
            if let previous, previous != dataKey {
                _ = try store.run(RedisCommand("PEXPIRE", previous, String(retainMs)))
            }
            return .published
        case .refusedByEpoch(let current):
            _ = try store.run(RedisCommand("DEL", dataKey))
            return .fenced(current: current)
        case .failed(let message):
            throw RedisError.server(message, context: "switching the vector set pointer \(pointerKey)")
        }
    }

    /// The published set when its version is above `version`, else nil
    /// (nothing published, or nothing newer). A data hash that expired
    /// between reading the pointer and its chunks also gives nil (the next poll sees the newer pointer).
    /// - Throws: `RedisError`, or `CodecError` for a damaged set.
    func loadIfNewer(than version: Int64, store: any RedisStore) throws -> ItemVectorSet? {
        let pointer = try store.run(RedisCommand("HMGET", pointerKey, "version", "data")).array ?? []
        guard pointer.count == 2, let published = pointer[0].int, published > version,
              let dataKey = pointer[1].string else { return nil }
        guard let header = try store.run(RedisCommand("HGET", dataKey, "header")).bytes else { return nil }
        let count = try ItemVectorSet.chunkCount(header: header)
        var pipeline = RedisPipeline()
        for n in 0..<count { pipeline.add(RedisCommand("HGET", dataKey, String(n))) }
        var chunks: [[UInt8]] = []
        chunks.reserveCapacity(count)
        for reply in try store.execute(pipeline, onRetry: { _, _ in }) {
            _ = try reply.checked(context: "reading the vector set \(dataKey)")
            guard let bytes = reply.bytes else { return nil }
            chunks.append(bytes)
        }
        return try ItemVectorSet.decode(header: header, chunks: chunks)
    }
}
