import FreshetEmbeddings
import FreshetKafka

extension StreamProcessor {
    /// Publishes the owned tasks and their progress to `stats.tasks` (read by
    /// `/tasks`). Processing thread only: it reads task state, which belongs
    /// to that thread. Called at every assignment, revocation and loss, and
    /// from `updateGauges` (about once a second).
    ///
    /// Every task kind is described through `StreamTask` (position,
    /// `gauges.watermarkMs`, `atEnd`), so a new kind needs nothing here.
    func publishTasks(nowMs: Int64 = StreamProcessor.wallClockMs()) {
        let owned: [(id: TaskId, topic: String, position: Int64?, watermarkMs: Int64?, finished: Bool)] =
            taskManager.ordered.map { task in
                (task.id, taskManager.inputs.topicPartition(of: task.id).topic, task.nextOffset,
                 task.gauges.watermarkMs, task.atEnd)
            }
        func key(_ topic: String, _ partition: Int32) -> Int64? {
            topics.firstIndex(of: topic).map { Int64($0) << 32 | Int64(partition) }
        }
        let (processed, checkpoints) = stats.tasks.tallies(
            keepingKeys: Set(owned.compactMap { key($0.topic, $0.id.partition) }),
            tasks: Set(owned.map { $0.id.description }))
        var tasks: [TaskSnapshot] = []
        tasks.reserveCapacity(owned.count)
        for task in owned {
            let end = consumer?.cachedHighWatermark(TopicPartition(topic: task.topic, partition: task.id.partition))
            let checkpoint = checkpoints[task.id.description]
            tasks.append(TaskSnapshot(
                task: task.id.description, stage: task.id.stage.rawValue, topic: task.topic, partition: task.id.partition,
                epoch: epochs[task.id], position: task.position, endOffset: end,
                lag: end.map { max(0, $0 - (task.position ?? 0)) },
                // Final markers only flow in bounded runs; say so rather than leave it to the reader.
                finished: options.stopAtEnd && task.finished,
                watermarkMs: task.watermarkMs,
                recordsProcessed: key(task.topic, task.id.partition).flatMap { processed[$0] } ?? 0,
                lastCheckpointOffset: checkpoint?.offset, lastCheckpointMs: checkpoint?.atMs,
                rebuilding: rebuildingTasks[task.id] != nil,
                paused: isPausedForAlignment(task.id),
                joinerEntries: joinerEntries(task.id), joinerPeakEntries: joinerEntries(task.id, peak: true)))
        }
        tasks.sort { ($0.stage, $0.partition) < ($1.stage, $1.partition) }
        stats.tasks.publish(OwnershipSnapshot(
            group: options.group, memberId: consumer?.memberId ?? "", generation: consumer?.generationId,
            memberOfGroup: memberOfGroup, bounded: options.stopAtEnd, publishedMs: nowMs, tasks: tasks))
    }

    /// The examples' join entries of the task that joins them (a counts
    /// task, or an item task without the counts stage), now or at their peak
    /// (nil: another task, or examples off).
    func joinerEntries(_ id: TaskId, peak: Bool = false) -> Int? {
        guard topology.embeddings.enabled, topology.embeddings.examples else { return nil }
        let joiner: ImpressionJoiner?
        switch id.stage {
        case .counts: joiner = (taskManager[id] as? CountTask)?.joiner
        case .items where !topology.routesExamplesThroughCounts: joiner = itemTasks[id.partition]?.embeddings?.joiner
        default: joiner = nil
        }
        guard let joiner else { return nil }
        return peak ? joiner.peakStateCount : joiner.stateCount
    }

    /// What waits for the watermark before it is joined: an item task's
    /// impressions awaiting their features, a counts task's held records
    /// (nil: another task, or examples off).
    func joinWaiting(_ id: TaskId) -> Int? {
        guard topology.embeddings.enabled, topology.embeddings.examples else { return nil }
        switch id.stage {
        case .items: return itemTasks[id.partition]?.embeddings?.pending.waitingCount
        case .counts: return (taskManager[id] as? CountTask)?.heldCount
        default: return nil
        }
    }
}
