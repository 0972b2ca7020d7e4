import Foundation
import FreshetCore
import FreshetKafka
import FreshetRedis

/// Losing the checkpoint store (Redis restarted without persistence, FLUSHALL,
/// a failover to an empty or stale replica, eviction) is a different fault
/// from being fenced: no newer owner exists, the task's state and position are
/// simply gone. Freshet detects it and rebuilds each affected task by
/// replaying its input partition from offset 0 with empty state:
///
/// - a source task re-reads its source partition; the repartition records it
///   sends again carry their original (source partition, offset) and are
///   dropped by the item and user tasks' duplicate filters;
/// - an item or user task re-reads its repartition partition, originals first,
///   so its duplicate filter is rebuilt before the re-sent copies arrive;
/// - features are absolute values, so rewriting them converges to the exact ones.
///
/// This is exact only when the broker still holds each partition from offset
/// 0. When retention deleted a prefix, the state cannot be rebuilt: the
/// processor refuses to go on (a clear error, `/readyz` 503, exit 1) rather
/// than publish wrong features.
extension StreamProcessor {
    /// How the loss was noticed (the `evidence` label of `freshet_checkpoint_store_lost_total`).
    enum StoreLossEvidence: String {
        /// A fenced write found no epoch key.
        case epochMissing = "epoch_missing"
        /// A fenced write found an epoch older than the one this owner took.
        case epochRolledBack = "epoch_rolled_back"
        /// A task with committed offsets (or with checkpointed entries) has no checkpoint (or no state).
        case checkpointMissing = "checkpoint_missing"
        /// Redis restarted from a snapshot older than this owner's latest checkpoint.
        case checkpointRolledBack = "checkpoint_rolled_back"
    }

    struct StoreLoss {
        var evidence: StoreLossEvidence
        var detail: String
    }

    func topicPartition(of id: TaskId) -> TopicPartition { taskManager.inputs.topicPartition(of: id) }

    // MARK: - At assignment

    /// Whether the store lost a task being assigned: the group committed an
    /// offset past the earliest one but there is no checkpoint (commits follow
    /// checkpoints, so a commit without one means the checkpoint is gone), or
    /// the checkpoint counts more entries than its state hash holds (a hash
    /// evicted or deleted, or some of its fields).
    func storeLossAtAssign(_ id: TaskId, checkpoint: TaskCheckpoint?, committed: Int64?) throws -> StoreLoss? {
        guard topology.checkpointIntervalMs > 0 else { return nil }
        guard let checkpoint else {
            guard let committed, committed > 0 else { return nil }
            return StoreLoss(evidence: .checkpointMissing,
                             detail: "the group committed offset \(committed) but Redis holds no checkpoint for the task")
        }
        if checkpoint.entries > 0 {
            // Every entry the checkpoint counts has its field (each checkpoint
            // writes the changed ones with the count); fewer fields mean some
            // were lost (a breaker's HDEL of 10 of 598 fields went unnoticed
            // and left those items wrong for good; only a missing hash was caught).
            var pipeline = RedisPipeline()
            pipeline.add(RedisCommand(arguments: [Array("HLEN".utf8), Array(keys.checkpointState(id).utf8)]))
            let replies = try controlExecute(pipeline)
            if let fields = try replies.first?.checked(context: "HLEN \(keys.checkpointState(id))").int, fields < checkpoint.entries {
                return StoreLoss(evidence: .checkpointMissing,
                                 detail: fields == 0 ? "the checkpoint counts \(checkpoint.entries) entries but its state hash is gone"
                                     : "the checkpoint counts \(checkpoint.entries) entries but its state hash holds \(fields)")
            }
        }
        return nil
    }

    /// Re-creates a lost task empty at assignment and returns the offset to start from.
    func rebuildAtAssign(_ id: TaskId, topicPartition tp: TopicPartition, loss: StoreLoss, committed: Int64,
                         nowMs: Int64) throws -> Int64 {
        let earliest = try announceLoss(id, topicPartition: tp, loss: loss)
        dropTask(id)
        guard let epoch = try acquireEpoch(for: id, unlessAbove: nil) else {
            throw ProcessorError.redis("cannot take the epoch of \(id)")
        }
        taskManager.epochs[id] = epoch
        try deleteCheckpoint(id)
        deadLettersSentBefore[id] = try deadLettersSentBeforeRebuild(id, topic: tp.topic)
        _ = try restore(id, topicPartition: tp, nowMs: nowMs)
        if committed > earliest { rebuildingTasks[id] = committed }
        return earliest
    }

    // MARK: - While running

    /// A running task whose store was lost: rebuild it in place (new epoch,
    /// empty state, seek to offset 0). Not recoverable: stop (see the type).
    func checkpointStoreLost(_ id: TaskId, evidence: StoreLossEvidence, detail: String) {
        guard let oldEpoch = taskManager.epochs[id] else { return }
        let tp = topicPartition(of: id)
        let reached = taskManager[id]?.nextOffset
        do {
            let earliest = try announceLoss(id, topicPartition: tp, loss: StoreLoss(evidence: evidence, detail: detail))
            dropTask(id)
            guard let epoch = try acquireEpoch(for: id, unlessAbove: oldEpoch) else {
                logger.warning("task fenced while rebuilding: another instance owns it now; dropping it here",
                               metadata: ["task": "\(id)"])
                return
            }
            taskManager.epochs[id] = epoch
            try deleteCheckpoint(id)
            deadLettersSentBefore[id] = try deadLettersSentBeforeRebuild(id, topic: tp.topic)
            defer { deadLettersSentBefore[id] = nil }
            _ = try restore(id, topicPartition: tp, nowMs: clockNowMs())
            checkpointer.writtenMs[id] = nil
            try consumer.seek(tp, offset: earliest, timeoutMs: 5000)
            // Rebuilding (and not ready) until the replay is back where the task was.
            if let reached, reached > earliest { rebuildingTasks[id] = reached }
            logger.info("task assigned", metadata: [
                "task": "\(id)", "epoch": "\(epoch)", "restored_entries": "0", "offset": "\(earliest)", "rebuild": "true",
            ])
        } catch {
            logger.critical("cannot rebuild the task: \(error)", metadata: ["task": "\(id)"])
            stats.failed("checkpoint store lost and the task cannot be rebuilt: \(error)")
            blockCommits("the checkpoint store lost task \(id) and it cannot be rebuilt")
            fatalError = error
            stopFlag.set()
        }
    }

    /// Logs the loss, counts it, and checks that the input can be replayed
    /// exactly. Returns the offset to replay from (always 0).
    /// - Throws: `ProcessorError.checkpoint` when retention deleted part of the input.
    func announceLoss(_ id: TaskId, topicPartition tp: TopicPartition, loss: StoreLoss) throws -> Int64 {
        storeLostTasks.append(id)
        stats.metrics.checkpointStoreLost(evidence: loss.evidence.rawValue).increment()
        logger.critical("CHECKPOINT STORE LOST: Redis no longer holds this task's checkpoint (not fenced: no newer owner); rebuilding its state by replaying its input from the earliest retained offset", metadata: [
            "task": "\(id)", "evidence": "\(loss.evidence.rawValue)", "detail": "\(loss.detail)",
        ])
        do {
            return try Self.replayStart(task: id, partition: tp, earliest: try consumer.earliestOffset(tp, timeoutMs: 5000))
        } catch let error as ProcessorError {
            stats.failed(error.description)
            throw error
        }
    }

    /// The offset a lost task replays from: 0, when the broker still holds its
    /// input partition from the start (state is a function of the whole input).
    /// - Parameter earliest: the partition's earliest retained offset.
    /// - Throws: `ProcessorError.checkpoint` when retention deleted records
    ///   (`earliest > 0`): the state cannot be rebuilt exactly.
    static func replayStart(task id: TaskId, partition tp: TopicPartition, earliest: Int64) throws -> Int64 {
        guard earliest <= 0 else {
            throw ProcessorError.checkpoint("checkpoint store lost for task \(id) and its input \(tp) no longer starts at offset 0 (the earliest retained offset is \(earliest): retention deleted records), so its state cannot be rebuilt exactly; refusing to run. Restore Redis from a backup, or accept approximate features by resetting the group's offsets (see docs/OPERATIONS.md, \"Redis faults\")")
        }
        return 0
    }

    /// Deletes what is left of a task's checkpoint (after a partial loss or a
    /// rollback), so the rebuilt task's incremental checkpoints start clean.
    func deleteCheckpoint(_ id: TaskId) throws {
        var pipeline = RedisPipeline()
        pipeline.add(RedisCommand(arguments: [Array("DEL".utf8), Array(keys.checkpointMeta(id).utf8),
                                               Array(keys.checkpointState(id).utf8),
                                               Array(keys.checkpointEmbeddings(id).utf8)]))
        _ = try controlExecute(pipeline)
    }

    /// Logs tasks whose rebuild has passed the offset they had reached before the loss.
    func checkRebuildProgress() {
        guard !rebuildingTasks.isEmpty else { return }
        for (id, target) in rebuildingTasks {
            guard let next = taskManager[id]?.nextOffset, next >= target else { continue }
            rebuildingTasks[id] = nil
            logger.notice("task rebuilt after the checkpoint store loss", metadata: ["task": "\(id)", "offset": "\(next)"])
        }
    }

    // MARK: - Redis restarts

    /// Once per checkpoint: when Redis's `run_id` changed (it restarted),
    /// checks every owned task's epoch and latest checkpoint, and rebuilds the
    /// tasks Redis lost or rolled back (a restart from an older snapshot loses
    /// incremental checkpoint deltas silently).
    func verifyCheckpointStore() {
        let runId: String
        do { runId = try currentRedisRunId() } catch {
            logger.warning("cannot read redis run_id: \(error)")
            return
        }
        defer { redisRunId = runId }
        guard let previous = redisRunId, previous != runId else { return }
        logger.warning("redis restarted (run_id changed): checking every task's epoch and checkpoint",
                       metadata: ["previous_run_id": "\(previous)", "run_id": "\(runId)"])
        withRebuildPass { verifyCheckpoints(of: allTaskIds) }
    }

    /// The end of a bounded run, before the loop ends: checks every task's
    /// epoch and latest checkpoint (whatever `run_id` says: a FLUSHALL keeps
    /// it), and rebuilds the lost ones. Returns true when it rebuilt any: the
    /// run is not complete any more (they replay their input and reach its
    /// end again). Tasks that finished their input write nothing more, so
    /// only this check (or the final checkpoint, too late) finds their loss:
    /// a Redis restarted empty between the last checkpoint and the end left
    /// every user's features missing after an exit 0 (a breaker's finding).
    func checkpointStoreLostBeforeEnd() -> Bool {
        let before = storeLostTasks.count
        if let runId = try? currentRedisRunId() { redisRunId = runId }
        withRebuildPass { verifyCheckpoints(of: allTaskIds) }
        return storeLostTasks.count > before
    }

    /// `verifyCheckpointStore`'s check of each task, rebuilding the lost ones
    /// (in the caller's rebuild pass). Every task's keys are read in one
    /// pipeline (as the stop's last look reads them), then each loss acted on.
    private func verifyCheckpoints(of ids: [TaskId]) {
        let held = ids.compactMap { id in taskManager.epochs[id].map { (id: id, epoch: $0) } }
        guard !held.isEmpty else { return }
        let replies: [RedisReply]
        do {
            replies = try controlExecute(Self.storeCheck(of: held.map(\.id), keys: keys))
        } catch {
            logger.warning("cannot check the tasks' checkpoints after a redis restart: \(error)")
            return
        }
        for (n, task) in held.enumerated() {
            let inStore = Self.heldInStore(replies, at: n)
            if let loss = Self.storeLoss(ourEpoch: task.epoch, ourCheckpoint: checkpointer.writtenMs[task.id],
                                         epoch: inStore.epoch, checkpoint: inStore.checkpoint) {
                checkpointStoreLost(task.id, evidence: loss.evidence, detail: "redis restarted and \(loss.detail)")
            }
        }
    }

    // MARK: - After the stop's last write

    /// What a stopping run held and had written, taken before it leaves the group.
    struct StoreAtStop {
        /// The tasks held and their epochs.
        var epochs: [TaskId: Int64]
        /// The held tasks that had read input (a position): only they can
        /// have written anything a loss takes away.
        var withInput: Set<TaskId>
        /// `written_ms` of each task's latest acknowledged checkpoint.
        var checkpoints: [TaskId: Int64]
        /// Redis's `run_id` as of the latest check (nil: never read).
        var runId: String?
        /// Whether the stop writes after its last checkpoint (a bounded run's
        /// final refresh republishes every vector after it).
        var writesAfterCheckpoint: Bool
    }

    /// Once every write of the stop is acknowledged: the tasks held at the
    /// stop whose epoch or checkpoint Redis no longer holds (it restarted
    /// empty, or was flushed, after the last check: while the stop wrote its
    /// final checkpoint, refresh or republication, or while leaving the
    /// group). Their features are gone, though every write was acknowledged.
    /// A task a newer owner took meanwhile is not lost. Also notes
    /// (`storeRestartedAtStop`) a restart that kept the checkpoints (a
    /// snapshot or append-only file) but may have lost what was written after
    /// the last of them. A Redis that cannot answer for `lookAttempts` tries
    /// (a connection the restart closed fails the first) cannot confirm the
    /// writes either: every held task counts as lost (the next run checks
    /// again, and rebuilds what is gone).
    func storeLostSince(_ stop: StoreAtStop) -> [TaskId] {
        let ids = stop.epochs.keys.sorted { $0.description < $1.description }
        guard !ids.isEmpty else { return [] }
        var replies: [RedisReply] = []
        for attempt in 1...Self.lookAttempts {
            do {
                replies = try control.executeOnce(Self.storeCheck(of: ids, keys: keys))
                break
            } catch {
                guard attempt < Self.lookAttempts else {
                    logger.critical("cannot confirm that Redis still holds this run's writes (unreachable at the stop): \(error)")
                    return ids
                }
                Thread.sleep(forTimeInterval: 0.1 * Double(attempt))
            }
        }
        var lost: [TaskId] = []
        for (n, id) in ids.enumerated() {
            // A task that read nothing wrote nothing (no feature, no
            // checkpoint): its epoch key alone gone is no loss (a FLUSHALL
            // while a partition stayed empty).
            guard let epoch = stop.epochs[id], stop.withInput.contains(id) || stop.checkpoints[id] != nil else { continue }
            let held = Self.heldInStore(replies, at: n)
            guard let loss = Self.storeLoss(ourEpoch: epoch, ourCheckpoint: stop.checkpoints[id],
                                            epoch: held.epoch, checkpoint: held.checkpoint) else { continue }
            lost.append(id)
            stats.metrics.checkpointStoreLost(evidence: loss.evidence.rawValue).increment()
            logger.critical("CHECKPOINT STORE LOST while the run stopped: Redis no longer holds what this task wrote; the next run of this group rebuilds it", metadata: [
                "task": "\(id)", "evidence": "\(loss.evidence.rawValue)", "detail": "\(loss.detail)",
            ])
        }
        // (Redis answered just now: reading run_id does not wait on an outage.)
        if lost.isEmpty, stop.writesAfterCheckpoint, let before = stop.runId, let now = try? currentRedisRunId(), now != before {
            storeRestartedAtStop = true
            logger.warning("redis restarted while the run stopped (run_id changed); its checkpoints survived, what was written after the last of them may not have",
                           metadata: ["previous_run_id": "\(before)", "run_id": "\(now)"])
        }
        return lost
    }

    /// Tries of the stop's last look at the store, 0.1 s, 0.2 s, ... apart (~5 s in all).
    static let lookAttempts = 10

    /// `GET` epoch and `HGET` checkpoint `written_ms`, per task, in order.
    static func storeCheck(of ids: [TaskId], keys: RedisKeys) -> RedisPipeline {
        var pipeline = RedisPipeline()
        for id in ids {
            pipeline.add(RedisCommand(arguments: [Array("GET".utf8), Array(keys.epoch(id).utf8)]))
            pipeline.add(RedisCommand(arguments: [Array("HGET".utf8), Array(keys.checkpointMeta(id).utf8),
                                                   Array("written_ms".utf8)]))
        }
        return pipeline
    }

    /// The `n`-th task's epoch and checkpoint `written_ms` from `storeCheck`'s replies.
    static func heldInStore(_ replies: [RedisReply], at n: Int) -> (epoch: Int64?, checkpoint: Int64?) {
        func number(_ i: Int) -> Int64? { i < replies.count ? replies[i].string.flatMap { Int64($0) } : nil }
        return (number(2 * n), number(2 * n + 1))
    }

    /// Whether Redis lost a task, from its epoch key and checkpoint as Redis
    /// holds them now against ours: the epoch key missing or behind ours, or
    /// our epoch with a checkpoint older than our latest, or none (a restart
    /// from an older snapshot). nil: intact, or a newer owner holds the task.
    static func storeLoss(ourEpoch: Int64, ourCheckpoint: Int64?, epoch: Int64?, checkpoint: Int64?) -> StoreLoss? {
        if epoch != ourEpoch {
            guard FencedWriteReply.epochRefusal(ours: ourEpoch, current: epoch) == .storeLost else { return nil }
            return StoreLoss(evidence: epoch == nil ? .epochMissing : .epochRolledBack,
                             detail: "the epoch key is \(epoch.map { "at \($0)" } ?? "missing")")
        }
        // Older or missing: a rollback. (Newer: a checkpoint that landed but
        // whose acknowledgement this run did not count, not a loss.)
        if let ours = ourCheckpoint, (checkpoint ?? Int64.min) < ours {
            return StoreLoss(evidence: .checkpointRolledBack,
                             detail: "holds the checkpoint written at \(checkpoint.map(String.init) ?? "none"), not the latest at \(ours)")
        }
        return nil
    }

    /// `run_id` from `INFO server`: a new value after every Redis start.
    /// On a cluster, every master's: a failover (a replica promoted) counts as a restart.
    /// Blocks while Redis is unreachable, so its retries are reported like the
    /// writer's (`/readyz` "redis unreachable"): a checkpoint can reach this
    /// before any feature write finds Redis gone.
    func currentRedisRunId() throws -> String {
        try control.serverRunId(onRetry: { [stats] error, attempt in stats.redisRetry(error: error, attempt: attempt) })
    }
}
