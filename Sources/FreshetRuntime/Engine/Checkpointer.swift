import Foundation
import FreshetCore
import FreshetKafka
import Logging

/// What the commit protocol needs from the rest of the engine (the
/// `StreamProcessor` provides it; a test driver can provide its own).
protocol CheckpointHost: AnyObject {
    /// Renders every task's changed features and submits them to the Redis writer.
    func flushFeatures(nowMs: Int64)
    /// After a Redis restart: checks each task's epoch and checkpoint, rebuilding lost ones.
    func verifyCheckpointStore()
    /// Sends pending repartition bundles and waits until the broker
    /// acknowledged every produced record.
    /// - Throws: when the flush timed out or failed.
    func flushOutput() throws
    /// Why a record could not even be enqueued (such a record is not covered by a flush).
    var outputFatal: String? { get }
    /// Waits until Redis answered every submitted write, then acts on the
    /// writer's report. Returns the tasks whose offsets must not be committed now.
    func drainWriter() -> Set<TaskId>
    /// Submits checkpoint writes to the Redis writer.
    func submitCheckpoints(_ writes: [FencedWrite])
    /// Records the dead-letter floors of source tasks just checkpointed.
    func recordDeadLetterProgress(tasks: [TaskId])
    /// Commits offsets to the consumer group (asynchronously).
    func commitOffsetsToKafka(_ offsets: [TopicPartition: Int64]) throws
}

/// The commit protocol, in Kafka Streams' order: features acknowledged by
/// Redis and repartitioned records acknowledged by the broker first, then
/// each task's state with its offsets (one fenced write per task), then the
/// Kafka offset commit (which only serves lag monitoring and tools: restore
/// reads the checkpoint).
///
/// A task is committed only when every step landed for it: its features (no
/// epoch refusal, no abandoned write), its checkpoint (no rejected key). Once
/// commits are blocked (a fatal error, abandoned writes), nothing is
/// checkpointed or committed any more in this run. Processing thread only.
final class Checkpointer {
    let keys: RedisKeys
    let tasks: TaskManager
    let stats: ProcessorStats
    let logger: Logger
    unowned let host: CheckpointHost

    /// Why nothing may be checkpointed or committed any more (a fatal error, or
    /// Redis writes abandoned): effects of processed records may be missing
    /// from Redis or the broker, so the next run must replay them. Never cleared.
    private(set) var commitsBlocked: String?
    /// Tasks whose latest checkpoint did not land (their offsets were not committed).
    var uncheckpointedTasks: Set<TaskId> = []
    /// `written_ms` of each task's latest acknowledged checkpoint, to notice a
    /// Redis that came back from an older snapshot.
    var writtenMs: [TaskId: Int64] = [:]
    /// Per task, the users or items whose key Redis refused and has not taken
    /// since (`RefusedEntity`): each checkpoint has the task write them in
    /// full again before its flush, and records those Redis refused again
    /// (reported by the writer before the checkpoint is written), so a key
    /// fixed by the operator is written without waiting for a change, in
    /// this run or, from the checkpoint, the next owner's.
    var refused: [TaskId: Set<RefusedEntity>] = [:]
    /// Wall clock of the latest checkpoint (or commit) attempt, ms.
    var lastCheckpointMs: Int64 = 0
    /// Why the latest checkpoint (or commit) was skipped for records the
    /// broker did not acknowledge; nil once one got past the producer flush.
    private(set) var unacknowledgedOutput: String?

    init(keys: RedisKeys, tasks: TaskManager, stats: ProcessorStats, logger: Logger, host: CheckpointHost) {
        self.keys = keys
        self.tasks = tasks
        self.stats = stats
        self.logger = logger
        self.host = host
    }

    /// Stops every later checkpoint and offset commit of this run.
    func block(_ reason: String) {
        guard commitsBlocked == nil else { return }
        commitsBlocked = reason
        logger.critical("no further checkpoint or offset commit in this run: \(reason)")
    }

    /// Flushes, checkpoints and commits `ids` (see the type for the order).
    func checkpointAndCommit(tasks ids: [TaskId], nowMs: Int64) {
        lastCheckpointMs = nowMs
        guard commitsBlocked == nil else { return }
        let started = StreamProcessor.wallClockMs()
        host.verifyCheckpointStore()
        rewriteRefused(ids)
        host.flushFeatures(nowMs: nowMs)
        do {
            try flushOutputNotingFailure()
        } catch {
            // Records not acknowledged: the checkpoint would claim their input as
            // done. Skip this checkpoint; the next one retries.
            stats.checkpointFailures.increment()
            logger.warning("checkpoint skipped: producer flush failed: \(error)")
            return
        }
        // A record that could not even be enqueued is not covered by the flush.
        if let fatal = host.outputFatal {
            block("a record could not be enqueued for a repartition, dead-letter or examples topic: \(fatal)")
            return
        }
        // Features first: a task whose features were refused (store lost, fenced)
        // or abandoned must not checkpoint past them.
        var excluded = host.drainWriter()
        guard commitsBlocked == nil else { return }
        var bytes = 0
        var writes: [FencedWrite] = []
        for id in ids where !excluded.contains(id) {
            guard let epoch = tasks.epochs[id], let task = tasks[id],
                  var write = checkpointWrite(for: task, epoch: epoch, nowMs: nowMs) else { continue }
            write.isCheckpoint = true
            bytes += write.byteCount
            writes.append(write)
        }
        if !writes.isEmpty { host.submitCheckpoints(writes) }
        excluded.formUnion(host.drainWriter())
        guard commitsBlocked == nil else { return }
        for write in writes where !excluded.contains(write.task) {
            writtenMs[write.task] = nowMs
            stats.tasks.checkpointed(task: write.task.description, offset: tasks[write.task]?.nextOffset, atMs: nowMs)
            uncheckpointedTasks.remove(write.task)
        }
        if !excluded.isEmpty {
            stats.checkpointFailures.increment()
            logger.warning("checkpoint incomplete: offsets of these tasks are not committed", metadata: [
                "tasks": "\(excluded.sorted { $0.description < $1.description })",
            ])
        }
        stats.checkpointCompleted(seconds: Double(StreamProcessor.wallClockMs() - started) / 1000, bytes: bytes)
        let committable = ids.filter { !excluded.contains($0) }
        host.recordDeadLetterProgress(tasks: committable)
        commitOffsets(for: committable)
    }

    /// Has each task write its refused entities in full at the next flush;
    /// the writer's report puts back those Redis refuses again. An entity
    /// the task no longer holds (rebuilt after a store loss) is dropped:
    /// nothing of it is left to write.
    private func rewriteRefused(_ ids: [TaskId]) {
        for id in ids {
            guard let entities = refused[id], !entities.isEmpty else { continue }
            refused[id] = []
            guard let task = tasks[id] else { continue }
            for entity in entities { _ = task.rewrite(entity) }
        }
    }

    /// At-least-once mode (checkpoints off): commit what Redis has acknowledged.
    func commitOnly(nowMs: Int64) {
        lastCheckpointMs = nowMs
        guard commitsBlocked == nil else { return }
        // No checkpoint records the refused entities here, but this run retries them.
        rewriteRefused(tasks.ids)
        host.flushFeatures(nowMs: nowMs)
        do { try flushOutputNotingFailure() } catch {
            logger.warning("commit skipped: producer flush failed: \(error)")
            return
        }
        if let fatal = host.outputFatal {
            block("a record could not be enqueued for a repartition, dead-letter or examples topic: \(fatal)")
            return
        }
        let excluded = host.drainWriter()
        commitOffsets(for: tasks.ids.filter { !excluded.contains($0) })
    }

    /// `host.flushOutput()`, keeping `unacknowledgedOutput` up to date.
    private func flushOutputNotingFailure() throws {
        do {
            try host.flushOutput()
            unacknowledgedOutput = nil
        } catch {
            unacknowledgedOutput = "\(error)"
            throw error
        }
    }

    /// Checkpoints off, tasks being revoked: commit what was acknowledged,
    /// quietly skipping the commit when the flush failed (the next owner replays).
    func commitAcknowledged(_ ids: [TaskId], nowMs: Int64) {
        guard commitsBlocked == nil else { return }
        host.flushFeatures(nowMs: nowMs)
        guard (try? host.flushOutput()) != nil, host.outputFatal == nil else { return }
        let excluded = host.drainWriter()
        commitOffsets(for: ids.filter { !excluded.contains($0) })
    }

    /// Commits the tasks' next offsets to Kafka; nothing once commits are blocked.
    func commitOffsets(for ids: [TaskId]) {
        guard commitsBlocked == nil else { return }
        var offsets: [TopicPartition: Int64] = [:]
        for id in ids {
            guard tasks.epochs[id] != nil, let next = tasks[id]?.nextOffset else { continue }
            offsets[tasks.inputs.topicPartition(of: id)] = next
        }
        guard !offsets.isEmpty else { return }
        do {
            try host.commitOffsetsToKafka(offsets)
        } catch {
            logger.warning("offset commit failed (the checkpoint still holds the position): \(error)")
        }
    }

    /// The incremental checkpoint of one task: entries changed since the last
    /// checkpoint, plus the meta fields. Written as one fenced script call, so
    /// state and offsets land together or not at all. The state hash is keyed
    /// by entity id, so rewriting an entry replaces its older version: the
    /// checkpoint compacts itself and restore reads one entry per key.
    /// Nil when the task has neither a position nor a changed entry.
    func checkpointWrite(for task: any StreamTask, epoch: Int64, nowMs: Int64) -> FencedWrite? {
        var snapshot = task.snapshot()
        guard !snapshot.isEmpty else { return nil }
        snapshot.meta.epoch = epoch
        snapshot.meta.writtenAtMs = nowMs
        snapshot.meta.refused = refused[task.id] ?? []
        let id = task.id
        var write = FencedWrite(task: id, epochKey: keys.epoch(id), epoch: epoch)
        Self.appendChangedEntries(snapshot.changed, key: keys.checkpointState(id), to: &write, encode: snapshot.encode)
        let embeddings = task.takeEmbeddingCheckpoint()
        write.hashSet(keys.checkpointEmbeddings(id), embeddings.changed)
        for item in embeddings.evicted { write.hashDelete(keys.checkpointEmbeddings(id), field: item) }
        write.hashSet(keys.checkpointMeta(id), snapshot.meta.fields())
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
}
