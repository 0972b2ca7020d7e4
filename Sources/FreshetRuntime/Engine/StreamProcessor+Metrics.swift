import CoreMetrics
import FreshetCore
import FreshetKafka

extension StreamProcessor {
    /// Refreshes gauges and the figures the progress line and `/readyz` show,
    /// and reports what the tasks counted (logging what needs a log line).
    /// Called after each batch; does real work at most once a second unless
    /// `force` (at the stop: a bounded run shorter than a second, or its last
    /// second, was never reported, a partitioning conflict included).
    func updateGauges(nowMs: Int64, force: Bool = false) {
        guard force || nowMs - lastGaugeMs >= 1_000 else { return }
        lastGaugeMs = nowMs
        var totalLag = 0, sourceLag = 0
        var lagKnown = false, sourceLagKnown = false
        var minWatermark: Int64?
        func lag(_ tp: TopicPartition, _ next: Int64?, source: Bool) {
            guard let high = consumer.cachedHighWatermark(tp) else { return }
            let value = max(0, high - (next ?? 0))
            stats.metrics.consumerLag(topic: tp.topic, partition: tp.partition).set(Double(value))
            totalLag += Int(value)
            lagKnown = true
            if source {
                sourceLag += Int(value)
                sourceLagKnown = true
            }
        }
        for task in taskManager.ordered {
            let id = task.id
            lag(taskManager.inputs.topicPartition(of: id), task.nextOffset, source: id.stage.readsSourceTopic)
            let gauges = task.gauges
            for (count, total) in gauges.counts {
                let grew = reportDelta(total, key: "\(count.rawValue)-\(id)", to: counter(for: count))
                if count == .userKeyPartitioningConflicts && grew > 0 {
                    logger.error("interactions are read as keyed by user (sources.keyed_by_user), but this partition holds \(gauges.partitioningConflict ?? "records no single partitioner put there"). Have every producer key by user_id with one partitioner (Java clients' default murmur2, or partitioner=murmur2_random in librdkafka clients), or set sources.keyed_by_user: false",
                                 metadata: ["task": "\(id)"])
                }
                if count == .undecodable && grew > 0 {
                    // Only Freshet writes these topics: a newer release in the
                    // group (docs/OPERATIONS.md, "Repartition format and
                    // upgrades") or damage. Either way its events are missing.
                    logger.error("repartition records this release cannot read were skipped",
                                 metadata: ["task": "\(id)", "skipped": "\(grew)", "total": "\(total)"])
                }
            }
            if let store = gauges.store {
                stats.metrics.stateEntries(store: "\(store.name)-\(id)").set(Double(store.entries))
            }
            if let joiner = joinerEntries(id) {
                stats.metrics.stateEntries(store: "joiner-\(id)").set(Double(joiner))
            }
            if let waiting = joinWaiting(id) {
                // What waits for the watermark: a lagging source holds it all back.
                stats.metrics.stateEntries(store: "join-waiting-\(id)").set(Double(waiting))
            }
            if let wm = gauges.watermarkMs {
                stats.metrics.watermarkMs(task: id.description).set(Double(wm))
                stats.metrics.eventTimeLagMs(task: id.description).set(Double(nowMs - wm))
                if gauges.isInputWatermark { minWatermark = min(minWatermark ?? wm, wm) }
            }
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
        stats.metrics.assignedPartitions.set(Double(taskManager.count))
        if options.stopAtEnd { endEstimate.observe(nowMs: nowMs, consumed: stats.recordsConsumed.value) }
        stats.update(totalLag: lagKnown ? totalLag : nil, sourceLag: sourceLagKnown ? sourceLag : nil, watermarkMs: minWatermark, joined: memberOfGroup,
                     redisProblem: writer.unhealthyReason)
        stats.rebuilding(rebuildingTasks.count)
        _ = stats.readiness
        publishTasks(nowMs: nowMs)
    }

    /// The counter a task's cumulative count is reported to.
    func counter(for count: TaskCount) -> CoreMetrics.Counter {
        switch count {
        case .deadLetterDuplicatesSkipped: return stats.metrics.deadLetterDuplicatesSkipped
        case .lateDropped: return stats.metrics.lateEventsDropped
        case .duplicatesDropped: return stats.metrics.repartitionDuplicatesDropped
        case .undecodable: return stats.metrics.undecodableRepartitionRecords
        case .userKeyPartitioningConflicts: return stats.metrics.userKeyPartitioningConflicts
        case .userHistoriesShortened: return stats.metrics.userHistoriesShortened
        case .staleFinishedMarkers: return stats.metrics.staleFinishedMarkers
        }
    }

    /// Adds what a task's cumulative count grew by since the last report; returns the growth.
    @discardableResult
    func reportDelta(_ total: Int, key: String, to counter: CoreMetrics.Counter) -> Int {
        let previous = reportedTotals[key] ?? 0
        reportedTotals[key] = total
        guard total > previous else { return 0 }
        counter.increment(by: total - previous)
        return total - previous
    }
}

/// Records of one partition counted since the last change of partition: a poll
/// returns records in per-partition runs, so `freshet_records_consumed_total`
/// is touched once per run instead of once per record.
struct ConsumedRun {
    /// `topicIndex << 32 | partition`, -1 when nothing is pending.
    var key: Int64 = -1
    var count = 0
}

extension StreamProcessor {
    /// Counts one record of an owned partition (see `ConsumedRun`). The run is
    /// flushed after each polled batch, before any rebalance callback can
    /// remove the partition's series.
    func countConsumed(topicIndex: Int, partition: Int32) {
        let key = Int64(topicIndex) << 32 | Int64(partition)
        if key == consumedRun.key {
            consumedRun.count += 1
            return
        }
        flushConsumedRun()
        consumedRun = ConsumedRun(key: key, count: 1)
    }

    /// Adds the pending run to its partition's counter.
    func flushConsumedRun() {
        let run = consumedRun
        consumedRun = ConsumedRun()
        guard run.count > 0 else { return }
        consumedCounter(key: run.key).increment(by: run.count)
        let topicIndex = Int(run.key >> 32)
        if topicIndex < taskManager.inputs.subscribed.count, taskManager.inputs.subscribed[topicIndex].stage.readsSourceTopic {
            stats.sourceEventsConsumed.add(run.count)
        }
        stats.tasks.addProcessed(key: run.key, count: run.count)
    }

    /// Per-partition consumed counters, cached: the registry lookup takes a lock.
    func consumedCounter(key: Int64) -> CoreMetrics.Counter {
        if let counter = consumedCounters[key] { return counter }
        let topicIndex = Int(key >> 32), partition = Int32(truncatingIfNeeded: key)
        let counter = stats.metrics.recordsConsumed(topic: topics[topicIndex], partition: partition)
        consumedCounters[key] = counter
        return counter
    }
}
