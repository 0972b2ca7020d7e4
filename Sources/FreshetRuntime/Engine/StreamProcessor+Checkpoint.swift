import Foundation
import FreshetCore
import FreshetKafka
import FreshetRedis

/// The engine's side of the commit protocol (`Checkpointer` runs it).
extension StreamProcessor: CheckpointHost {
    func checkpointAndCommit(tasks ids: [TaskId], nowMs: Int64) {
        checkpointer.checkpointAndCommit(tasks: ids, nowMs: nowMs)
        if !stateSettingsRecorded && !checkpointer.writtenMs.isEmpty { recordStateSettings() }
    }

    func commitOnly(nowMs: Int64) { checkpointer.commitOnly(nowMs: nowMs) }

    func flushOutput() throws {
        output.sendPendingBundles()
        try flushProducer(timeoutMs: 30_000)
    }

    var outputFatal: String? { output.fatal.map { "\($0)" } }

    func drainWriter() -> Set<TaskId> {
        writer.waitUntilDrained()
        return handleWriterReport()
    }

    func submitCheckpoints(_ writes: [FencedWrite]) {
        writer.submit(RedisWriter.Batch(writes: writes))
    }

    func commitOffsetsToKafka(_ offsets: [TopicPartition: Int64]) throws {
        try consumer.commit(offsets, synchronous: false)
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
