import FreshetCore
import FreshetFeatures
import FreshetKafka
import FreshetRedis

/// Forwards the consumer's rebalance callbacks (run inside `poll`, on the
/// processing thread) to the processor.
final class RebalanceBridge: EngineRebalanceHandler {
    unowned let processor: StreamProcessor
    init(processor: StreamProcessor) { self.processor = processor }

    func assigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] { processor.assign(partitions) }

    func revoked(_ partitions: [TopicPartition]) { processor.revoke(partitions, lost: false) }

    func lost(_ partitions: [TopicPartition]) { processor.revoke(partitions, lost: true) }
}

extension StreamProcessor {
    func taskId(for tp: TopicPartition) -> TaskId? { taskManager.inputs.taskId(for: tp) }

    /// Takes tasks over: bump each task's fencing epoch first (so a zombie can no
    /// longer write a newer checkpoint), then restore its state and start from
    /// the checkpointed offset. One rebuild pass (`withRebuildPass`): tasks the
    /// store lost share one read of the dead-letter topic.
    func assign(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        withRebuildPass { assignTasks(partitions) }
    }

    private func assignTasks(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        everAssigned = true
        memberOfGroup = true
        defer { publishTasks() }
        stats.markJoined()
        stats.rebalances.increment()
        stats.restoring(partitions.count)
        defer { stats.restoring(-partitions.count) }
        let now = clockNowMs()
        var starts: [TopicPartition: Int64] = [:]
        var committed: [TopicPartition: Int64] = [:]
        if topology.checkpointIntervalMs > 0 {
            // A committed offset without a checkpoint means the store lost the task.
            do { committed = try consumer.committedOffsets(for: partitions, timeoutMs: 5000) } catch {
                logger.critical("cannot read the group's committed offsets to check the checkpoint store: \(error)")
                fatalError = error
                stopFlag.set()
                return [:]
            }
        }
        do {
            var sources: [TaskId: String] = [:]
            for tp in partitions {
                if let id = taskId(for: tp), id.stage.readsSourceTopic { sources[id] = tp.topic }
            }
            deadLettersSentBefore = try deadLettersAlreadySent(tasks: sources)
        } catch {
            logger.critical("cannot read the dead-letter topic to deduplicate a replay: \(error)")
            fatalError = error
            stopFlag.set()
            return [:]
        }
        defer { deadLettersSentBefore = [:] }
        for tp in partitions {
            guard let id = taskId(for: tp) else { continue }
            do {
                let epoch = try acquireEpoch(for: id)
                taskManager.epochs[id] = epoch
                var checkpoint = try restore(id, topicPartition: tp, nowMs: now)
                if let loss = try storeLossAtAssign(id, checkpoint: checkpoint, committed: committed[tp]) {
                    checkpoint = nil
                    starts[tp] = try rebuildAtAssign(id, topicPartition: tp, loss: loss, committed: committed[tp] ?? 0, nowMs: now)
                } else if let offset = checkpoint?.nextOffset {
                    starts[tp] = offset
                }
                logger.info("task assigned", metadata: [
                    "task": "\(id)", "epoch": "\(epoch)",
                    "restored_entries": "\(checkpoint?.entries ?? 0)", "offset": "\(checkpoint?.nextOffset.map(String.init) ?? "committed")",
                ])
            } catch {
                logger.critical("cannot take over task: \(error)", metadata: ["task": "\(id)"])
                fatalError = error
                stopFlag.set()
            }
        }
        if let behind = checkpointsPastTheEnd(starts) {
            logger.critical("\(behind)")
            fatalError = ProcessorError.checkpoint(behind)
            stopFlag.set()
            return [:]
        }
        return starts
    }

    /// A task resuming past its partition's end: the topic was deleted and
    /// created again (or truncated) since the group checkpointed it, so the
    /// state and the downstream duplicate filters refer to records that are
    /// gone. Reading on would lose the new records (Kafka resets the position
    /// to the start and the item stage drops them as already seen) or wait
    /// for ever (the test broker, Tansu, answers nothing there); so the run
    /// refuses, saying so. Nil when every start lies within its partition.
    func checkpointsPastTheEnd(_ starts: [TopicPartition: Int64]) -> String? {
        guard !starts.isEmpty else { return nil }
        let ends: [TopicPartition: Int64]
        do {
            ends = try connections.endOffsets(config: kafkaConfig, topics: Array(Set(starts.keys.map(\.topic))).sorted())
        } catch {
            logger.warning("could not check the restored positions against the partitions' ends: \(error)")
            return nil
        }
        let past = starts.filter { tp, start in ends[tp].map { start > $0 } ?? false }
            .sorted { $0.key < $1.key }.map { "\($0.key) resumes at \($0.value) but ends at \(ends[$0.key] ?? 0)" }
        guard !past.isEmpty else { return nil }
        return "refusing to run: \(past.joined(separator: "; ")): the topic was deleted and created again, or truncated, since the group checkpointed it, and its state refers to records that are gone; start the group over (delete freshet:\(options.group):* and the group's committed offsets: docs/OPERATIONS.md) or use a new group"
    }

    /// Hands tasks back: flush, checkpoint and commit them (unless the
    /// partitions were lost, in which case another member already owns them
    /// and fencing would refuse the writes anyway), then drop their state.
    func revoke(_ partitions: [TopicPartition], lost: Bool) {
        stats.rebalances.increment()
        // Lost: we are out of the group until librdkafka rejoins (the next assign).
        if lost { memberOfGroup = false }
        let ids = partitions.compactMap(taskId(for:)).filter { taskManager.epochs[$0] != nil }
        if !lost && !ids.isEmpty {
            let now = clockNowMs()
            if topology.checkpointIntervalMs > 0 {
                checkpointAndCommit(tasks: ids, nowMs: now)
            } else {
                checkpointer.commitAcknowledged(ids, nowMs: now)
            }
        }
        for id in ids {
            logger.info("task revoked", metadata: ["task": "\(id)", "lost": "\(lost)"])
            dropTask(id)
        }
        publishTasks()
    }

    /// Takes a new fencing epoch for the task: higher than the current one and
    /// at least the wall clock in milliseconds, so an epoch taken after the
    /// store lost its keys is still above every epoch handed out before (a
    /// zombie of an earlier ownership stays fenced).
    func acquireEpoch(for id: TaskId) throws -> Int64 {
        guard let epoch = try acquireEpoch(for: id, unlessAbove: nil) else {
            throw ProcessorError.redis("acquiring the epoch of \(id) was refused")
        }
        return epoch
    }

    /// As `acquireEpoch(for:)`, but when `ours` is given, only if the current
    /// epoch is not above it (nil: a newer owner holds the task).
    func acquireEpoch(for id: TaskId, unlessAbove ours: Int64?) throws -> Int64? {
        var pipeline = RedisPipeline()
        pipeline.add(RedisCommand(arguments: [
            Array("EVAL".utf8), Array(Self.acquireEpochScript.utf8), Array("1".utf8), Array(keys.epoch(id).utf8),
            Array(String(clockNowMs()).utf8), Array((ours.map(String.init) ?? "").utf8),
        ]))
        let replies = try controlExecute(pipeline)
        guard let reply = replies.first, case .array(let parts) = reply, parts.count == 2,
              case .integer(let epoch) = parts[0] else {
            throw ProcessorError.redis("acquiring the epoch \(keys.epoch(id)) answered \(String(describing: replies.first))")
        }
        return epoch < 0 ? nil : epoch
    }

    /// KEYS[1] epoch key; ARGV[1] wall clock ms; ARGV[2] the caller's epoch or
    /// "" (then unconditional). Returns {new epoch, previous} or {-1, current}.
    package static let acquireEpochScript = """
    local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
    if ARGV[2] ~= '' and current > tonumber(ARGV[2]) then return {-1, current} end
    local epoch = math.max(current + 1, tonumber(ARGV[1]))
    redis.call('SET', KEYS[1], string.format('%d', epoch))
    return {epoch, current}
    """

    /// Creates the task (`TaskFactory`), loads its checkpoint if any
    /// (`StreamTask.restore`), adds what the engine keeps for its kind, and
    /// hands it to the task manager.
    func restore(_ id: TaskId, topicPartition tp: TopicPartition, nowMs: Int64) throws -> TaskCheckpoint? {
        let metaFields = try hashGetAll(keys.checkpointMeta(id))
        let checkpoint: TaskCheckpoint? = metaFields.isEmpty ? nil : try TaskCheckpoint.parse(metaFields, task: id)
        let task = taskFactory.make(id, topic: tp.topic, nowMs: nowMs)
        if let checkpoint {
            try task.restore(from: checkpoint, state: { apply in try scanState(id, apply) }, nowMs: nowMs)
        }
        if let source = task as? SourceTask {
            // Only records the replay will read again matter (at or after the checkpoint).
            let resumeAt = checkpoint?.nextOffset ?? 0
            source.deadLettersAlreadySent = (deadLettersSentBefore[id] ?? []).filter { $0 >= resumeAt }
            if !source.deadLettersAlreadySent.isEmpty {
                logger.info("dead letters sent before a crash will not be sent again",
                            metadata: ["task": "\(id)", "count": "\(source.deadLettersAlreadySent.count)"])
            }
        }
        // Finished markers of earlier bounded runs, read again from before
        // this acquisition, must not end this run's tasks (`FinishedMarkerFence`).
        (task as? ReadsFinishedMarkers)?.markerFence.sinceMs = nowMs
        // An item task's whole top K goes to `trending` at the next flush:
        // whatever happened to the key while no one owned the task (deleted
        // after a refused write, evicted, flushed) is mended without waiting
        // for a changed item. Changed items alone left `trending` empty after
        // a rerun that had nothing to replay (a breaker's finding).
        if task is ItemTask { trendingRewriteDue = true }
        // Keys Redis refused under the previous owner: written at this owner's first checkpoint.
        checkpointer.refused[id] = checkpoint?.refused
        if let item = task as? ItemTask, let side = item.embeddings {
            if checkpoint != nil { try restoreCooccurrenceRows(id, into: side) }
            clearEndOfRunMarks(id)
        }
        if let source = task as? SourceTask, source.userEmbeddings != nil, options.stopAtEnd {
            clearEndOfRunMarks(id)
        }
        taskManager.insert(task)
        alignmentAssigned(task, nowMs: nowMs)
        return checkpoint
    }

    /// The fields of the hash `key` over the control connection (empty when
    /// the key does not exist).
    /// - Throws: `RedisError` naming the key when Redis answers with an
    ///   error (a key of another type: `WRONGTYPE`) or cannot be reached
    ///   (after the control connection's retries); `ProcessorError.redis`
    ///   when the answer is not field-value pairs.
    func hashGetAll(_ key: String) throws -> [String: [UInt8]] {
        var pipeline = RedisPipeline()
        pipeline.add(RedisCommand("HGETALL", key))
        guard let reply = try controlExecute(pipeline).first else { return [:] }
        // An error (a key of another type: WRONGTYPE) is not an empty hash:
        // read as one, a checkpoint's meta made its task look never checkpointed.
        guard let pairs = try reply.checked(context: "HGETALL \(key)").fieldValuePairs else {
            throw ProcessorError.redis("HGETALL \(key): not a list of fields and values: \(reply)")
        }
        return Dictionary(pairs, uniquingKeysWith: { _, last in last })
    }

    /// Reads a task's state hash in pages (HSCAN), so restore of a large task
    /// never holds the whole reply twice.
    func scanState(_ id: TaskId, _ apply: (String, [UInt8]) throws -> Void) throws {
        try scanHash(keys.checkpointState(id), apply)
    }

    func scanHash(_ key: String, _ apply: (String, [UInt8]) throws -> Void) throws {
        try scanHashBytes(key) { field, value in try apply(String(decoding: field, as: UTF8.self), value) }
    }

    /// HSCAN over the control connection, retrying through outages and
    /// reporting them like every other control call (`controlExecute`).
    func scanHashBytes(_ key: String, _ apply: ([UInt8], [UInt8]) throws -> Void) throws {
        try control.scanHash(key, onRetry: { [stats] error, attempt in stats.redisRetry(error: error, attempt: attempt) }, apply)
    }
}
