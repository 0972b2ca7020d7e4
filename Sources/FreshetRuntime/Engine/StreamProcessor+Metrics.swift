import FreshetCore
import FreshetKafka

extension StreamProcessor {
    /// Refreshes gauges and the figures the progress line and `/readyz` show.
    /// Called after each batch; does real work at most once a second.
    func updateGauges(nowMs: Int64) {
        guard nowMs - lastGaugeMs >= 1_000 else { return }
        lastGaugeMs = nowMs
        var totalLag = 0
        var lagKnown = false
        var minWatermark: Int64?
        func lag(_ tp: TopicPartition, _ next: Int64?) {
            guard let high = consumer.cachedHighWatermark(tp) else { return }
            let value = max(0, high - (next ?? 0))
            stats.metrics.consumerLag(topic: tp.topic, partition: tp.partition).set(Double(value))
            totalLag += Int(value)
            lagKnown = true
        }
        for (tp, task) in sourceTasks {
            lag(tp, task.nextOffset)
            reportDelta(task.deadLetterDuplicatesSkipped, key: "dlq-dup-\(task.id)", to: stats.metrics.deadLetterDuplicatesSkipped)
            if let users = task.users {
                stats.metrics.stateEntries(store: "users-\(task.id)").set(Double(users.count))
            }
            if let wm = task.watermark.watermark {
                stats.metrics.watermarkMs(task: task.id.description).set(Double(wm))
                stats.metrics.eventTimeLagMs(task: task.id.description).set(Double(nowMs - wm))
                minWatermark = min(minWatermark ?? wm, wm)
            }
        }
        for (partition, task) in itemTasks {
            lag(TopicPartition(topic: itemTopic, partition: partition), task.nextOffset)
            stats.metrics.stateEntries(store: "items-\(task.id)").set(Double(task.store.count))
            if let wm = task.currentWatermark {
                stats.metrics.watermarkMs(task: task.id.description).set(Double(wm))
                stats.metrics.eventTimeLagMs(task: task.id.description).set(Double(nowMs - wm))
            }
            reportDelta(task.lateDropped, key: "late-\(task.id)", to: stats.metrics.lateEventsDropped)
            reportDelta(task.duplicatesDropped, key: "dup-\(task.id)", to: stats.metrics.repartitionDuplicatesDropped)
        }
        for (partition, task) in userTasks {
            lag(TopicPartition(topic: userTopic, partition: partition), task.nextOffset)
            stats.metrics.stateEntries(store: "users-\(task.id)").set(Double(task.users.count))
            reportDelta(task.duplicatesDropped, key: "dup-\(task.id)", to: stats.metrics.repartitionDuplicatesDropped)
        }
        let droppedExamples = output.examplesDropped
        if droppedExamples > reportedTotals["examples-dropped", default: 0] {
            reportedTotals["examples-dropped"] = droppedExamples
            logger.warning("training examples larger than output.max_message_bytes were dropped",
                           metadata: ["total": "\(droppedExamples)"])
        }
        for (reason, count) in output.takeDeadLetterCounts() {
            stats.metrics.deadLetters(reason: reason.rawValue).increment(by: count)
        }
        stats.metrics.assignedPartitions.set(Double(sourceTasks.count + itemTasks.count + userTasks.count))
        stats.update(totalLag: lagKnown ? totalLag : nil, watermarkMs: minWatermark, joined: memberOfGroup,
                     redisProblem: writer.unhealthyReason)
        stats.rebuilding(rebuildingTasks.count)
        _ = stats.readiness
    }

    /// Adds what a task's cumulative count grew by since the last report.
    func reportDelta(_ total: Int, key: String, to counter: Counter) {
        let previous = reportedTotals[key] ?? 0
        if total > previous { counter.increment(by: total - previous) }
        reportedTotals[key] = total
    }
}
