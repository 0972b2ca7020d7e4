import Foundation
import FreshetCore
import FreshetFeatures
import FreshetKafka
import FreshetRedis

extension StreamProcessor {
    /// Saves the tasks' state deltas with their input positions, then commits
    /// the offsets to Kafka, in Kafka Streams' order: features acknowledged by
    /// Redis and repartitioned records acknowledged by the broker first, then
    /// state with offsets (atomically, fenced), then the Kafka commit (which
    /// only serves lag monitoring and tools; restore reads the checkpoint).
    ///
    /// A task is committed only when every step landed for it: its features
    /// (no epoch refusal, no abandoned write), its checkpoint (no rejected
    /// key). Once commits are blocked (a fatal error, abandoned writes),
    /// nothing is checkpointed or committed any more.
    func checkpointAndCommit(tasks: [TaskId], nowMs: Int64) {
        lastCheckpointMs = nowMs
        guard commitsBlocked == nil else { return }
        let started = Self.wallClockMs()
        verifyCheckpointStore()
        flushFeatures(nowMs: nowMs)
        output.sendPendingBundles()
        do {
            try flushProducer(timeoutMs: 30_000)
        } catch {
            // Records not acknowledged: the checkpoint would claim their input as
            // done. Skip this checkpoint; the next one retries.
            stats.checkpointFailures.increment()
            logger.warning("checkpoint skipped: producer flush failed: \(error)")
            return
        }
        // A record that could not even be enqueued is not covered by the flush.
        if let fatal = output.fatal {
            blockCommits("a record could not be enqueued for the repartition or dead-letter topic: \(fatal)")
            return
        }
        // Features first: a task whose features were refused (store lost, fenced)
        // or abandoned must not checkpoint past them.
        writer.waitUntilDrained()
        var excluded = handleWriterReport()
        guard commitsBlocked == nil else { return }
        var bytes = 0
        var writes: [FencedWrite] = []
        for id in tasks where !excluded.contains(id) {
            guard let epoch = epochs[id], var write = checkpointWrite(for: id, epoch: epoch, nowMs: nowMs) else { continue }
            write.isCheckpoint = true
            bytes += write.byteCount
            writes.append(write)
        }
        if !writes.isEmpty {
            writer.submit(RedisWriter.Batch(writes: writes))
        }
        writer.waitUntilDrained()
        excluded.formUnion(handleWriterReport())
        guard commitsBlocked == nil else { return }
        for write in writes where !excluded.contains(write.task) {
            checkpointWrittenMs[write.task] = nowMs
            stats.tasks.checkpointed(task: write.task.description, offset: position(of: write.task)?.1 ?? nil, atMs: nowMs)
            uncheckpointedTasks.remove(write.task)
        }
        if !excluded.isEmpty {
            stats.checkpointFailures.increment()
            logger.warning("checkpoint incomplete: offsets of these tasks are not committed", metadata: [
                "tasks": "\(excluded.sorted { $0.description < $1.description })",
            ])
        }
        stats.checkpointCompleted(seconds: Double(Self.wallClockMs() - started) / 1000, bytes: bytes)
        let committable = tasks.filter { !excluded.contains($0) }
        recordDeadLetterProgress(tasks: committable)
        commitOffsets(for: committable)
    }

    /// At-least-once mode (checkpoints off): commit what Redis has acknowledged.
    func commitOnly(nowMs: Int64) {
        lastCheckpointMs = nowMs
        guard commitsBlocked == nil else { return }
        flushFeatures(nowMs: nowMs)
        output.sendPendingBundles()
        do { try flushProducer(timeoutMs: 30_000) } catch {
            logger.warning("commit skipped: producer flush failed: \(error)")
            return
        }
        if let fatal = output.fatal {
            blockCommits("a record could not be enqueued for the repartition or dead-letter topic: \(fatal)")
            return
        }
        writer.waitUntilDrained()
        let excluded = handleWriterReport()
        commitOffsets(for: allTaskIds.filter { !excluded.contains($0) })
    }

    /// Commits the tasks' next offsets to Kafka; nothing once commits are blocked.
    func commitOffsets(for tasks: [TaskId]) {
        guard commitsBlocked == nil else { return }
        var offsets: [TopicPartition: Int64] = [:]
        for id in tasks {
            guard epochs[id] != nil, let (tp, next) = position(of: id), let next else { continue }
            offsets[tp] = next
        }
        guard !offsets.isEmpty else { return }
        do {
            try consumer.commit(offsets, synchronous: false)
        } catch {
            logger.warning("offset commit failed (the checkpoint still holds the position): \(error)")
        }
    }

    func position(of id: TaskId) -> (TopicPartition, Int64?)? {
        switch id.stage {
        case .interactions, .impressions:
            let topic = id.stage == .interactions ? topology.sources.interactions : topology.sources.impressions
            let tp = TopicPartition(topic: topic, partition: id.partition)
            guard let task = sourceTasks[tp] else { return nil }
            return (tp, task.nextOffset)
        case .items:
            guard let task = itemTasks[id.partition] else { return nil }
            return (TopicPartition(topic: itemTopic, partition: id.partition), task.nextOffset)
        case .users:
            guard let task = userTasks[id.partition] else { return nil }
            return (TopicPartition(topic: userTopic, partition: id.partition), task.nextOffset)
        }
    }

    /// The incremental checkpoint of one task: entries changed since the last
    /// checkpoint, plus the meta fields. Written as one fenced script call, so
    /// state and offsets land together or not at all. The state hash is keyed
    /// by entity id, so rewriting an entry replaces its older version: the
    /// checkpoint compacts itself and restore reads one entry per key.
    func checkpointWrite(for id: TaskId, epoch: Int64, nowMs: Int64) -> FencedWrite? {
        var meta = TaskCheckpoint()
        meta.epoch = epoch
        meta.writtenAtMs = nowMs
        // Changed entries are encoded straight into the write (below), one reused buffer for all.
        var changed: [UInt32] = []
        var encode: (UInt32, inout ByteWriter) -> String = { _, _ in "" }
        switch id.stage {
        case .interactions, .impressions:
            guard let (tp, _) = position(of: id), let task = sourceTasks[tp] else { return nil }
            meta.nextOffset = task.nextOffset
            meta.eventTimeMs = task.watermark.maxTimestamp
            if let users = task.users {
                changed = users.takeChangedSlotsForCheckpoint()
                encode = users.appendCheckpointEntry
                meta.entries = users.count
            }
        case .items:
            guard let task = itemTasks[id.partition] else { return nil }
            meta.nextOffset = task.nextOffset
            meta.eventTimeMs = task.currentWatermark
            meta.sources = Self.sourceProgress(task.duplicates, watermarks: task.watermarks.inputs.compactMapValues(\.watermark))
            changed = task.store.takeChangedSlotsForCheckpoint()
            encode = task.store.appendCheckpointEntry
            meta.entries = task.store.count
            meta.storeMetadata = task.store.encodeMetadata()
        case .users:
            guard let task = userTasks[id.partition] else { return nil }
            meta.nextOffset = task.nextOffset
            meta.sources = Self.sourceProgress(task.duplicates, watermarks: [:])
            changed = task.users.takeChangedSlotsForCheckpoint()
            encode = task.users.appendCheckpointEntry
            meta.entries = task.users.count
        }
        guard meta.nextOffset != nil || !changed.isEmpty else { return nil }
        var write = FencedWrite(task: id, epochKey: keys.epoch(id), epoch: epoch)
        Self.appendChangedEntries(changed, key: keys.checkpointState(id), to: &write, encode: encode)
        write.hashSet(keys.checkpointEmbeddings(id), changedEmbeddingRows(for: id))
        for item in evictedEmbeddingRows(for: id) { write.hashDelete(keys.checkpointEmbeddings(id), field: item) }
        write.hashSet(keys.checkpointMeta(id), meta.fields())
        return write
    }

    /// `HSET key id entry ...` for the changed slots, each entry encoded into
    /// one reused writer and copied into the command (no array per entry).
    static func appendChangedEntries(_ slots: [UInt32], key: String, to write: inout FencedWrite,
                                     encode: (UInt32, inout ByteWriter) -> String) {
        write.beginHashSet(key, fieldCount: slots.count)
        var scratch = ByteWriter(capacity: 1024)
        for slot in slots {
            scratch.bytes.removeAll(keepingCapacity: true)
            let id = encode(slot, &scratch)
            write.appendHashField(id, scratch.bytes)
        }
    }

    static func sourceProgress(_ filter: DuplicateFilter,
                         watermarks: [DuplicateFilter.Source: EventTimeMs]) -> [TaskCheckpoint.SourceProgress] {
        let sources = Set(filter.highest.keys).union(watermarks.keys)
        return sources.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }.map { source in
            TaskCheckpoint.SourceProgress(source: source, lastAdmitted: filter.highest[source],
                                          watermarkMs: watermarks[source])
        }
    }

    /// Waits for every produced record's acknowledgement (repartition, dead
    /// letters, examples), reporting a long wait on `/readyz`.
    func flushProducer(timeoutMs: Int32) throws {
        stats.waitingForBroker(since: Date())
        defer { stats.waitingForBroker(since: nil) }
        try producer.flush(timeoutMs: timeoutMs)
    }

    /// Runs a pipeline on the control connection (epochs, checkpoint-store
    /// checks, dead-letter floors, markers), retrying through outages like
    /// the writer does, and reporting them (log every 5 s, `/readyz`) while
    /// the processing thread waits.
    func controlExecute(_ pipeline: RedisPipeline) throws(RedisError) -> [RedisReply] {
        try control.execute(pipeline, onRetry: { [stats] error, attempt in stats.redisRetry(error: error, attempt: attempt) })
    }
}
