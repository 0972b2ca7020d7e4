import FreshetCore
import FreshetKafka

/// Watermark alignment (`event_time.max_drift`; docs/ARCHITECTURE.md,
/// "Engine"): source partitions whose watermark runs more than the drift
/// ahead of the group's slowest are paused in the consumer, so that reading a
/// backlog moves every partition forward in event time together and the item
/// tasks' watermark (the minimum over every source partition) follows it.
///
/// The decisions are `WatermarkAlignment`'s (FreshetCore); this file feeds it
/// and performs them. It sees every source partition's watermark without a
/// coordinator: its own source tasks', and the others' through the markers
/// its item tasks received (an instance without item tasks aligns its own
/// partitions only). Processing thread only.
extension StreamProcessor {
    /// The alignment's name for a source task's partition (nil for other stages).
    func alignmentSource(_ id: TaskId) -> DuplicateFilter.Source? {
        id.stage.readsSourceTopic ? id.originSource : nil
    }

    /// A task was created for an assigned partition (assignment or rebuild).
    func alignmentAssigned(_ task: any StreamTask, nowMs: Int64) {
        guard alignment != nil, let source = alignmentSource(task.id) else { return }
        alignment?.assign(source, nowMs: nowMs)
        endReached[task.id] = nil
        pausedOnce.remove(task.id)
    }

    /// A task is dropped (revoked, lost, fenced, rebuilt): resume its partition
    /// if alignment paused it. librdkafka keeps a partition's pause across a
    /// reassignment, and a rebuild seeks it right after.
    func alignmentDropped(_ id: TaskId) {
        endReached[id] = nil
        pausedOnce.remove(id)
        if id.stage == .counts, let source = id.originSource {
            alignment?.unassign(source)
            return
        }
        guard alignment != nil, let source = alignmentSource(id), alignment?.unassign(source) == true else { return }
        let tp = taskManager.inputs.topicPartition(of: id)
        do {
            try consumer.resume([tp])
        } catch {
            // The partition is leaving this instance; its next owner starts unpaused
            // unless it is this instance again, whose assignment resumes it (below).
            logger.warning("cannot resume \(tp) as it leaves: \(error)")
            unresumed.insert(tp)
        }
        stats.metrics.pausedPartitions.set(Double(alignment?.paused.count ?? 0))
    }

    /// An end-of-partition notice for a source partition this instance owns:
    /// it is at the end of its log until it reads another record.
    func alignmentReachedEnd(_ tp: TopicPartition) {
        guard alignment != nil, let id = taskManager.inputs.taskId(for: tp), let task = sourceTasks[tp] else { return }
        endReached[id] = task.processed
    }

    /// Feeds the alignment every watermark this instance sees, then pauses and
    /// resumes source partitions as it decides. After the tasks' `advanceTime`
    /// (so the item tasks' views are current), at the marker cadence.
    func alignSources(nowMs: Int64) {
        guard var alignment else { return }
        retryUnresumed()
        for item in itemTasks.values {
            // `watermarks` holds the source partitions only (the counts stage
            // counts below as a downstream view of the tasks run here).
            for (source, input) in item.watermarks.inputs {
                if let watermark = input.watermark { alignment.observe(source, watermark: watermark, nowMs: nowMs) }
            }
            for source in item.finishedSources where TaskId.Stage(sourceCode: source.topic) != nil {
                alignment.markFinished(source, nowMs: nowMs)
            }
        }
        for (tp, task) in sourceTasks {
            guard let source = alignmentSource(task.id) else { continue }
            var atEnd = endReached[task.id] == task.processed
            // The Fetch high watermark (correct on Tansu, unlike ListOffsets):
            // a partition read up to it has nothing more to fetch now.
            if !atEnd, let next = task.nextOffset, let high = consumer.cachedHighWatermark(tp), next >= high {
                atEnd = true
                // A bounded run ends a partition on its end-of-partition notice;
                // a pause can discard one already queued (librdkafka reports
                // each end offset once), so a partition paused in this
                // assignment also ends at the Fetch high watermark.
                if options.stopAtEnd && pausedOnce.contains(task.id) { reachedEnd(tp, nowMs: nowMs) }
            }
            alignment.observeOwned(source, watermark: task.watermark.watermark, hasRead: task.processed > 0,
                                   atEnd: atEnd, finished: task.finished, nowMs: nowMs)
        }
        // The counts stage run here (examples on): sources wait for what it has read.
        for task in taskManager.ordered where task.id.stage == .counts {
            guard let source = task.id.originSource else { continue }
            alignment.observeDownstream(source, watermark: task.gauges.watermarkMs, nowMs: nowMs)
        }
        let decision = alignment.decide(nowMs: nowMs)
        if !decision.isEmpty {
            logger.debug("watermark alignment", metadata: [
                "floor": "\(alignment.floor(nowMs: nowMs))", "pause": "\(decision.pause)", "resume": "\(decision.resume)",
            ])
            perform(decision, on: &alignment)
            stats.metrics.pausedPartitions.set(Double(alignment.paused.count))
        }
        self.alignment = alignment
    }

    private func perform(_ decision: WatermarkAlignment<DuplicateFilter.Source>.Decision,
                         on alignment: inout WatermarkAlignment<DuplicateFilter.Source>) {
        func partition(_ source: DuplicateFilter.Source) -> (TaskId, TopicPartition)? {
            guard let stage = TaskId.Stage(sourceCode: source.topic) else { return nil }
            let id = TaskId(stage: stage, partition: source.partition)
            return (id, taskManager.inputs.topicPartition(of: id))
        }
        for source in decision.pause {
            guard let (id, tp) = partition(source) else { continue }
            do {
                try consumer.pause([tp])
                pausedOnce.insert(id)
                alignmentPauseCount += 1
                stats.metrics.alignmentPauses.increment()
            } catch {
                logger.warning("watermark alignment cannot pause \(tp): \(error)")
                alignment.pauseFailed(source)
            }
        }
        for source in decision.resume {
            guard let (_, tp) = partition(source) else { continue }
            do {
                try consumer.resume([tp])
            } catch {
                // Still paused: the next decision resumes it again (never left paused).
                logger.warning("watermark alignment cannot resume \(tp): \(error)")
                alignment.resumeFailed(source)
            }
        }
    }

    /// Partitions that left while paused and whose resume failed: resumed once
    /// this instance owns them again (resuming an unpaused partition does nothing).
    private func retryUnresumed() {
        guard !unresumed.isEmpty else { return }
        for tp in unresumed where sourceTasks[tp] != nil {
            do {
                try consumer.resume([tp])
                unresumed.remove(tp)
            } catch {
                logger.warning("cannot resume \(tp): \(error)")
            }
        }
    }

    /// Whether alignment has paused the source task's partition now (for `/tasks`).
    func isPausedForAlignment(_ id: TaskId) -> Bool {
        guard let source = alignmentSource(id) else { return false }
        return alignment?.isPaused(source) ?? false
    }
}
