import FreshetCore
import FreshetEmbeddings
import FreshetFeatures
import FreshetKafka
import FreshetRedis

/// The processing loop: poll a batch, hand each record to the task that owns
/// its partition (`TaskManager.route`), then the periodic work of the batch
/// (event time, flushes, checkpoints through the `Checkpointer`, gauges).
/// Records are handed to their tasks during `poll` (views into librdkafka's
/// messages, see `step`); rebalance callbacks run inside `poll` too,
/// on this thread, after the records polled before them were processed.
extension StreamProcessor {
    func processLoop() throws {
        while try step() {}
    }

    /// One turn of the loop: polls a batch (rebalance callbacks run inside),
    /// processes it, and does the batch's periodic work. Returns false once
    /// the run is over (stop requested, or a bounded run complete); `run`
    /// calls it until then, a test driver calls it step by step.
    /// - Throws: a fatal error (see `run`); the caller then stops with `stopOnFatalError`.
    package func step() throws -> Bool {
        guard !stopFlag.isSet else { return false }
        // Each record is handed to its task as a view into librdkafka's
        // message while the poll runs: no copy of any record (the copies
        // into two arrays per record, their retains and frees, were ~10% of
        // this thread). The clock is read once per poll, when the first
        // record arrived (after the poll's wait), so the whole batch sees one
        // time as when records were collected first.
        var batchNow: Int64?
        let output: TaskOutput = self.output
        // Each record is shown to its task a few records before it is
        // processed (`StreamTask.lookAhead`): a source task asks the cache
        // for the user's state then (`UserStatePrefetcher`).
        let poll = try consumer.poll(maxRecords: 4096, timeoutMs: 20, lookahead: UserStatePrefetcher.lookahead,
                                     ahead: { record in
            taskManager.route(topicIndex: record.topicIndex, partition: record.partition)?.lookAhead(key: record.key)
        }) { record in
            let now: Int64
            if let batchNow { now = batchNow } else { now = clockNowMs(); batchNow = now }
            dispatch(record, nowMs: now, output: output)
        }
        let now = batchNow ?? clockNowMs()
        stats.recordsConsumed.add(poll.records)
        flushConsumedRun()
        recordsSinceFlush += poll.records
        for eof in poll.endOfPartition {
            alignmentReachedEnd(eof.topicPartition)
            reachedEnd(eof.topicPartition, nowMs: now)
        }
        for error in poll.errors {
            stats.kafkaErrors.add(1)
            logger.warning("kafka: \(error)")
        }
        if let fatal = self.output.fatal {
            throw ProcessorError.kafkaFailure(fatal, context: "cannot enqueue a record for a repartition, dead-letter or examples topic")
        }
        if let fatalError { throw fatalError }
        afterBatch(nowMs: now)
        if options.stopAtEnd && boundedRunComplete {
            // The store is checked before completion is said, and again
            // before the loop ends if waiting for the group's final rows took
            // turns (not twice in one turn: each check reads every task's keys).
            var storeChecked = false
            if !completeLogged {
                if checkpointStoreLostBeforeEnd() { return true }
                storeChecked = true
                logger.info("bounded run complete: every assigned partition reached its end")
                completeLogged = true
            }
            if awaitsGroupsFinalRows(nowMs: now) { return true }
            if !storeChecked && checkpointStoreLostBeforeEnd() {
                completeLogged = false
                return true
            }
            boundedRunEnded = true
            return false
        }
        if options.stopAtEnd && holdsNothing(nowMs: now) {
            logger.notice("bounded run: this instance has held no partition for 10 s (more instances than partitions); the other members finish the run")
            boundedRunEnded = true
            return false
        }
        return true
    }

    /// Feeds one record to the task that owns its partition (one array lookup;
    /// nothing for a partition not owned, e.g. just revoked).
    @inline(__always)
    func dispatch(_ record: ConsumedRecordView, nowMs: Int64, output: TaskOutput) {
        guard let task = taskManager.route(topicIndex: record.topicIndex, partition: record.partition) else { return }
        // Counted per partition only for owned partitions, so that a revoked
        // partition's series, once removed, is not re-created by a late record.
        countConsumed(topicIndex: record.topicIndex, partition: record.partition)
        let input = RecordView(partition: record.partition, offset: record.offset, key: record.key,
                               value: record.value, timestampMs: record.timestampMs, valueIsNull: record.valueIsNull)
        task.process(input, nowMs: nowMs, output: output)
    }

    /// Periodic work after each polled batch: watermarks, flushes, checkpoints.
    func afterBatch(nowMs: Int64) {
        output.sendPendingBundles()
        let markersDue = nowMs - lastMarkerMs >= 20
        if markersDue { lastMarkerMs = nowMs }
        // Several instances in one bounded run: tasks move between them, and
        // a moved item task needs every source's final marker again.
        let finalMarkersDue = options.stopAtEnd && nowMs - lastFinalMarkerMs >= 1_000
        if finalMarkersDue { lastFinalMarkerMs = nowMs }
        let tick = TimeTick(nowMs: nowMs, markersDue: markersDue, finalMarkersDue: finalMarkersDue)
        let output: TaskOutput = self.output
        for task in taskManager.ordered { task.advanceTime(tick, output: output) }
        if markersDue { alignSources(nowMs: nowMs) }
        maybeRefreshEmbeddings()
        producer.poll(timeoutMs: 0)
        if recordsSinceFlush >= topology.redis.flushMaxKeys || nowMs - lastFlushMs >= topology.redis.flushIntervalMs {
            flushFeatures(nowMs: nowMs)
        }
        if topology.checkpointIntervalMs > 0, nowMs - checkpointer.lastCheckpointMs >= topology.checkpointIntervalMs {
            checkpointAndCommit(tasks: allTaskIds, nowMs: nowMs)
        } else if topology.checkpointIntervalMs == 0, nowMs - checkpointer.lastCheckpointMs >= 1_000 {
            commitOnly(nowMs: nowMs)
        }
        handleWriterReport()
        checkRebuildProgress()
        groupRegistryHeartbeat(nowMs: nowMs)
        watchEviction(nowMs: nowMs)
        updateGauges(nowMs: nowMs)
        if let outMs = groupJoinWatch.check(memberOfGroup: memberOfGroup, nowMs: nowMs) {
            logger.warning("not a member of consumer group \(options.group) for \(outMs / 1000) s: waiting for the group coordinator to assign partitions (is the broker reachable? on the test broker, Tansu, a group whose first join was interrupted can stay stuck: use another --group)")
        }
    }

    // MARK: - Bounded runs

    func reachedEnd(_ tp: TopicPartition, nowMs: Int64) {
        guard options.stopAtEnd, let id = taskManager.inputs.taskId(for: tp), let task = taskManager[id],
              task.reachEnd(output: output) else { return }
        logger.info("partition reached its end", metadata: ["task": "\(task.id)", "offset": "\(task.nextOffset ?? 0)"])
    }

    /// Bounded runs: true once this member of the group has held no task for
    /// 10 s (long past a cooperative rebalance's second phase).
    func holdsNothing(nowMs: Int64) -> Bool {
        guard everAssigned, memberOfGroup, taskManager.isEmpty else {
            emptySinceMs = nil
            return false
        }
        let since = emptySinceMs ?? nowMs
        emptySinceMs = since
        return nowMs - since >= 10_000
    }

    /// Every assigned source partition reached its end and every repartition-fed
    /// task heard the final marker of every source partition (so it holds all
    /// records derived from them).
    var boundedRunComplete: Bool {
        guard everAssigned, !taskManager.isEmpty else { return false }
        return taskManager.ordered.allSatisfy(\.atEnd)
    }

    // MARK: - Flush

    /// Writes every key changed since the last flush (one fenced write per task).
    func flushFeatures(nowMs: Int64) {
        lastFlushMs = nowMs
        recordsSinceFlush = 0
        let syncDue = topology.embeddings.enabled && !embeddingSyncHeld
            && (nowMs - lastEmbeddingSyncMs >= topology.embeddings.syncIntervalMs || forceEmbeddingSync)
        if syncDue { lastEmbeddingSyncMs = nowMs }
        // A full user republication continues at every flush until done (in slices).
        let syncEmbeddings = syncDue
            || (!embeddingSyncHeld && sourceTasks.values.contains { $0.userEmbeddings?.republishing == true })
            || (!embeddingSyncHeld && itemTasks.values.contains { $0.embeddings?.rewritePending == true })
        var context = RenderContext(renderer: renderer, vectors: syncEmbeddings ? vectorSetToPublish(nowMs: nowMs) : nil,
                                    embeddings: EngineEmbeddingPublisher(processor: self))
        context.collectsCounts = topology.embeddings.enabled && topology.embeddings.examples
        // Until a rewrite lands: a refused one reports the key again and sets it again.
        context.rewriteTrending = trendingRewriteDue
        trendingRewriteDue = false
        var batches = FlushBatches()
        for task in taskManager.ordered {
            guard let epoch = taskManager.epochs[task.id] else { continue }
            var write = FencedWrite(task: task.id, epochKey: keys.epoch(task.id), epoch: epoch)
            task.render(into: &write, context: &context)
            if let batch = batches.add(write) { writer.submit(batch) }
        }
        if topology.embeddings.enabled && topology.embeddings.examples { interactionCounts.publish(context.counts) }
        if let batch = batches.finish(eventTimeSamples: context.samples) { writer.submit(batch) }
    }
}

/// Lets tasks publish embedding vectors with the engine's field names and Feast rows.
private final class EngineEmbeddingPublisher: EmbeddingPublisher {
    unowned let processor: StreamProcessor
    init(processor: StreamProcessor) { self.processor = processor }

    func renderUserEmbeddings(_ side: UserEmbeddingSide, store: UserFeatureStore, set: ItemVectorSet,
                              into write: inout FencedWrite) {
        processor.renderUserEmbeddings(side, store: store, set: set, into: &write)
    }

    func renderItemEmbeddings(_ side: ItemEmbeddingSide, partition: Int32, set: ItemVectorSet, into write: inout FencedWrite) {
        processor.renderItemEmbeddings(side, partition: partition, set: set, into: &write)
    }
}
