// Freshet's metrics, all served by the admin server on GET /metrics
// (Prometheus text format 0.0.4, loopback by default).
//
// The instrumented code uses swift-metrics' types (`Counter`, `Meter` for
// gauges, `Recorder` for histograms); the backend is swift-prometheus'
// `PrometheusCollectorRegistry`, which stores the series and renders them.
// Handlers are made on the registry directly (not through the global
// `MetricsSystem`) so that every family carries its HELP text and each
// processor (and each test) has a registry of its own.
//
// | name | type | labels | meaning |
// |---|---|---|---|
// | freshet_records_consumed_total | counter | topic, partition | Kafka records taken from a source or repartition topic partition (good and bad). Series are removed when the partition is revoked. |
// | freshet_dead_letters_total | counter | reason | Bad input sent to the dead-letter topic, by reason (e.g. not_json, missing_field, unknown_action, absurd_timestamp). |
// | freshet_late_events_dropped_total | counter | – | Events whose pane had already left its window when they arrived (windowed features only). |
// | freshet_consumer_lag | gauge | topic, partition | High watermark minus the next offset to read, from Fetch high watermarks. Removed on revoke. |
// | freshet_watermark_ms | gauge | task | A task's event-time watermark, epoch milliseconds. Removed on revoke. |
// | freshet_event_time_lag_ms | gauge | task | Wall clock minus the task's watermark, milliseconds. Removed on revoke. |
// | freshet_freshness_seconds | histogram | – | Event time of an event to Redis acknowledging the write that contains it (buckets 0.005 s..60 s). |
// | freshet_redis_pipeline_seconds | histogram | – | Time from sending a Redis pipeline to its last reply. |
// | freshet_redis_batch_commands | histogram | – | Commands per Redis pipeline. |
// | freshet_checkpoint_seconds | histogram | – | Duration of one checkpoint (state snapshot and offsets, saved together). |
// | freshet_checkpoint_bytes | gauge | – | Size of the latest checkpoint, bytes. |
// | freshet_checkpoint_failures_total | counter | – | Checkpoints that failed. |
// | freshet_rebalances_total | counter | – | Consumer-group rebalances seen (assign and revoke callbacks that changed the assignment). |
// | freshet_assigned_partitions | gauge | – | Partitions this instance owns now (all its input topics). |
// | freshet_state_entries | gauge | store | Keys held in a keyed state store (`users-<task>`, `items-<task>`; `joiner-<task>`: the examples' join entries, pending impressions and tombstones; `join-waiting-<task>`: an item task's impressions waiting for the watermark before their item features are evaluated, a counts task's records held for it). Removed on revoke. |
// | freshet_paused_partitions | gauge | – | Source partitions this instance has paused for watermark alignment (`event_time.max_drift`). |
// | freshet_alignment_pauses_total | counter | – | Pauses of a source partition by watermark alignment (each refetches what was prefetched). |
// | freshet_repartition_duplicates_dropped_total | counter | – | Repartition records dropped as duplicates by (source partition, offset). |
// | freshet_undecodable_repartition_records_total | counter | – | Repartition records no reader of this release understands (written by a newer release, or damaged); each growth is logged. |
// | freshet_user_key_partitioning_conflicts_total | counter | – | `interactions` partitions read as keyed by user that hold records no single partitioner keyed by user put there (mixed partitioners, unkeyed records): one per partition and run, logged with the remedy. |
// | freshet_dead_letter_duplicates_skipped_total | counter | – | Dead letters a replay did not send again. |
// | freshet_stale_finished_markers_total | counter | – | End-of-input markers of an earlier bounded run, read again by a task that started before them (rebuilt, or without a checkpoint); their end is not believed. |
// | freshet_redis_fenced_writes_total | counter | – | Redis writes refused by fencing because a newer owner holds the partition. |
// | freshet_redis_rejected_keys_total | counter | reason | Keys Redis refused for good (reason: the server's error prefix, e.g. WRONGTYPE); each is logged with its key, the rest of its batch lands. |
// | freshet_checkpoint_store_lost_total | counter | evidence | Tasks found lost by the checkpoint store (evidence: epoch_missing, epoch_rolled_back, checkpoint_missing, checkpoint_rolled_back); each is rebuilt by replaying its input. |
// | freshet_ready | gauge | – | 1 when /readyz answers 200, else 0. |
// | freshet_build_info | gauge | version, librdkafka | Always 1; labels carry the Freshet version and the librdkafka version in use. |
//
// A labelled family appears on /metrics with its first series and leaves with
// its last one (swift-prometheus renders no empty families).

import CoreMetrics
import Prometheus

/// Freshet's metric families on one Prometheus registry, with typed accessors.
///
/// Accessors with labels return a swift-metrics handle on the registry's
/// series for that label set (the same series every call). They take the
/// registry's lock, so a task should fetch its handles once (e.g. when a
/// partition is assigned) and keep them. Handle operations are lock-free
/// atomics for counters and gauges, and one short lock for histograms.
package final class FreshetMetrics: Sendable {
    /// Holds every series; `render()` is its text exposition.
    package let registry: PrometheusCollectorRegistry
    /// The swift-metrics factory over `registry` (what a handle's `destroy()` calls).
    let factory: PrometheusMetricsFactory

    package enum Name {
        package static let recordsConsumed = "freshet_records_consumed_total"
        package static let deadLetters = "freshet_dead_letters_total"
        package static let lateEventsDropped = "freshet_late_events_dropped_total"
        package static let consumerLag = "freshet_consumer_lag"
        package static let watermarkMs = "freshet_watermark_ms"
        package static let eventTimeLagMs = "freshet_event_time_lag_ms"
        package static let freshnessSeconds = "freshet_freshness_seconds"
        package static let redisPipelineSeconds = "freshet_redis_pipeline_seconds"
        package static let redisBatchCommands = "freshet_redis_batch_commands"
        package static let checkpointSeconds = "freshet_checkpoint_seconds"
        package static let checkpointBytes = "freshet_checkpoint_bytes"
        package static let checkpointFailures = "freshet_checkpoint_failures_total"
        package static let rebalances = "freshet_rebalances_total"
        package static let assignedPartitions = "freshet_assigned_partitions"
        package static let stateEntries = "freshet_state_entries"
        package static let repartitionDuplicatesDropped = "freshet_repartition_duplicates_dropped_total"
        package static let undecodableRepartitionRecords = "freshet_undecodable_repartition_records_total"
        package static let userKeyPartitioningConflicts = "freshet_user_key_partitioning_conflicts_total"
        package static let userHistoriesShortened = "freshet_user_histories_shortened_total"
        package static let staleFinishedMarkers = "freshet_stale_finished_markers_total"
        package static let deadLetterDuplicatesSkipped = "freshet_dead_letter_duplicates_skipped_total"
        package static let redisFencedWrites = "freshet_redis_fenced_writes_total"
        package static let redisRejectedKeys = "freshet_redis_rejected_keys_total"
        package static let checkpointStoreLost = "freshet_checkpoint_store_lost_total"
        package static let ready = "freshet_ready"
        package static let pausedPartitions = "freshet_paused_partitions"
        package static let alignmentPauses = "freshet_alignment_pauses_total"
        package static let buildInfo = "freshet_build_info"
    }

    package enum Buckets {
        /// Event time to Redis ack: 5 ms .. 60 s.
        package static let freshnessSeconds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        /// One Redis pipeline round trip: 0.5 ms .. 2.5 s.
        package static let redisPipelineSeconds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
        /// Commands in one pipeline: 1 .. 10,000.
        package static let redisBatchCommands: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
        /// One checkpoint: 1 ms .. 30 s.
        package static let checkpointSeconds: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    }

    /// HELP text of each family (one text per name: the registry refuses two).
    enum Help {
        static let recordsConsumed = "Kafka records consumed, by topic and partition."
        static let deadLetters = "Bad input records sent to the dead-letter topic, by reason."
        static let lateEventsDropped = "Events dropped because their pane had already left the window."
        static let consumerLag = "High watermark minus next offset to consume, by topic and partition."
        static let watermarkMs = "Event-time watermark of a task, epoch milliseconds."
        static let eventTimeLagMs = "Wall clock minus the task's watermark, milliseconds."
        static let freshnessSeconds = "Seconds from an event's event time to Redis acknowledging its features."
        static let redisPipelineSeconds = "Seconds from sending a Redis pipeline to its last reply."
        static let redisBatchCommands = "Commands per Redis pipeline."
        static let checkpointSeconds = "Seconds taken by one checkpoint."
        static let checkpointBytes = "Size of the latest checkpoint in bytes."
        static let checkpointFailures = "Checkpoints that failed."
        static let rebalances = "Consumer group rebalances."
        static let assignedPartitions = "Partitions currently assigned to this instance."
        static let stateEntries = "Entries in a keyed state store."
        static let repartitionDuplicatesDropped = "Repartition records dropped as duplicates."
        static let undecodableRepartitionRecords = "Repartition records this release cannot read (a newer writer, or damage); skipped."
        static let userKeyPartitioningConflicts = "Interactions partitions read as keyed by user whose records no single partitioner keyed by user placed."
        static let userHistoriesShortened = "Positives routed with fewer items of their user's history, to fit in a message."
        static let staleFinishedMarkers = "End-of-input markers of an earlier bounded run read again; their end is not believed."
        static let deadLetterDuplicatesSkipped = "Dead letters not sent again by a replay (already sent before a crash)."
        static let redisFencedWrites = "Redis writes refused by fencing (a newer owner holds the partition)."
        static let redisRejectedKeys = "Keys Redis refused for good (e.g. WRONGTYPE); the rest of their batch landed."
        static let checkpointStoreLost = "Tasks the checkpoint store lost (Redis restarted empty, flushed, failed over, evicted); each is rebuilt by replay."
        static let ready = "1 when the instance is ready, else 0."
        static let pausedPartitions = "Source partitions paused by watermark alignment."
        static let alignmentPauses = "Pauses of a source partition by watermark alignment."
        static let buildInfo = "Build information; the value is always 1."
    }

    package let lateEventsDropped: CoreMetrics.Counter
    package let freshnessSeconds: Recorder
    package let redisPipelineSeconds: Recorder
    package let redisBatchCommands: Recorder
    package let checkpointSeconds: Recorder
    package let checkpointBytes: Meter
    package let checkpointFailures: CoreMetrics.Counter
    package let rebalances: CoreMetrics.Counter
    package let assignedPartitions: Meter
    package let repartitionDuplicatesDropped: CoreMetrics.Counter
    package let undecodableRepartitionRecords: CoreMetrics.Counter
    package let userKeyPartitioningConflicts: CoreMetrics.Counter
    package let userHistoriesShortened: CoreMetrics.Counter
    package let staleFinishedMarkers: CoreMetrics.Counter
    package let deadLetterDuplicatesSkipped: CoreMetrics.Counter
    package let redisFencedWrites: CoreMetrics.Counter
    package let ready: Meter
    package let pausedPartitions: Meter
    package let alignmentPauses: CoreMetrics.Counter

    /// Content type of `render()`'s output.
    package static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Registers the unlabelled families (each shows from the start, at 0) and
    /// sets `freshet_build_info`. Labelled families appear with their first series.
    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                version: String, librdkafkaVersion: String) {
        self.registry = registry
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        func counter(_ name: String, _ help: String) -> CoreMetrics.Counter {
            Self.counter(registry, factory, name, help, labels: [])
        }
        func meter(_ name: String, _ help: String) -> Meter {
            Self.meter(registry, factory, name, help, labels: [])
        }
        func histogram(_ name: String, _ help: String, _ buckets: [Double]) -> Recorder {
            let handler = registry.makeValueHistogram(descriptor: Self.descriptor(name, help), buckets: buckets)
            return Recorder(label: name, dimensions: [], aggregate: true, handler: handler, factory: factory)
        }
        lateEventsDropped = counter(Name.lateEventsDropped, Help.lateEventsDropped)
        freshnessSeconds = histogram(Name.freshnessSeconds, Help.freshnessSeconds, Buckets.freshnessSeconds)
        redisPipelineSeconds = histogram(Name.redisPipelineSeconds, Help.redisPipelineSeconds, Buckets.redisPipelineSeconds)
        redisBatchCommands = histogram(Name.redisBatchCommands, Help.redisBatchCommands, Buckets.redisBatchCommands)
        checkpointSeconds = histogram(Name.checkpointSeconds, Help.checkpointSeconds, Buckets.checkpointSeconds)
        checkpointBytes = meter(Name.checkpointBytes, Help.checkpointBytes)
        checkpointFailures = counter(Name.checkpointFailures, Help.checkpointFailures)
        rebalances = counter(Name.rebalances, Help.rebalances)
        assignedPartitions = meter(Name.assignedPartitions, Help.assignedPartitions)
        repartitionDuplicatesDropped = counter(Name.repartitionDuplicatesDropped, Help.repartitionDuplicatesDropped)
        undecodableRepartitionRecords = counter(Name.undecodableRepartitionRecords, Help.undecodableRepartitionRecords)
        userKeyPartitioningConflicts = counter(Name.userKeyPartitioningConflicts, Help.userKeyPartitioningConflicts)
        userHistoriesShortened = counter(Name.userHistoriesShortened, Help.userHistoriesShortened)
        staleFinishedMarkers = counter(Name.staleFinishedMarkers, Help.staleFinishedMarkers)
        deadLetterDuplicatesSkipped = counter(Name.deadLetterDuplicatesSkipped, Help.deadLetterDuplicatesSkipped)
        redisFencedWrites = counter(Name.redisFencedWrites, Help.redisFencedWrites)
        ready = meter(Name.ready, Help.ready)
        pausedPartitions = meter(Name.pausedPartitions, Help.pausedPartitions)
        alignmentPauses = counter(Name.alignmentPauses, Help.alignmentPauses)
        Self.meter(registry, factory, Name.buildInfo, Help.buildInfo,
                   labels: [("librdkafka", librdkafkaVersion), ("version", version)]).set(1)
    }

    // MARK: Labelled accessors

    /// `freshet_records_consumed_total{topic,partition}`.
    package func recordsConsumed(topic: String, partition: some BinaryInteger) -> CoreMetrics.Counter {
        Self.counter(registry, factory, Name.recordsConsumed, Help.recordsConsumed,
                     labels: Self.partitionLabels(topic, partition))
    }

    /// `freshet_dead_letters_total{reason}`.
    package func deadLetters(reason: String) -> CoreMetrics.Counter {
        Self.counter(registry, factory, Name.deadLetters, Help.deadLetters, labels: [("reason", reason)])
    }

    /// `freshet_redis_rejected_keys_total{reason}`.
    package func redisRejectedKeys(reason: String) -> CoreMetrics.Counter {
        Self.counter(registry, factory, Name.redisRejectedKeys, Help.redisRejectedKeys, labels: [("reason", reason)])
    }

    /// `freshet_checkpoint_store_lost_total{evidence}`.
    package func checkpointStoreLost(evidence: String) -> CoreMetrics.Counter {
        Self.counter(registry, factory, Name.checkpointStoreLost, Help.checkpointStoreLost, labels: [("evidence", evidence)])
    }

    /// `freshet_consumer_lag{topic,partition}`.
    package func consumerLag(topic: String, partition: some BinaryInteger) -> Meter {
        Self.meter(registry, factory, Name.consumerLag, Help.consumerLag, labels: Self.partitionLabels(topic, partition))
    }

    /// `freshet_watermark_ms{task}`; `task` names stage and partition, e.g. "items-3".
    package func watermarkMs(task: String) -> Meter {
        Self.meter(registry, factory, Name.watermarkMs, Help.watermarkMs, labels: [("task", task)])
    }

    /// `freshet_event_time_lag_ms{task}`.
    package func eventTimeLagMs(task: String) -> Meter {
        Self.meter(registry, factory, Name.eventTimeLagMs, Help.eventTimeLagMs, labels: [("task", task)])
    }

    /// `freshet_state_entries{store}`.
    package func stateEntries(store: String) -> Meter {
        Self.meter(registry, factory, Name.stateEntries, Help.stateEntries, labels: [("store", store)])
    }

    // MARK: Revocation

    /// Drops the per-partition series of a revoked partition (records consumed, lag).
    /// Handles kept by callers keep counting into nothing; fetch new ones on reassignment.
    package func removePartition(topic: String, partition: some BinaryInteger) {
        let labels = Self.partitionLabels(topic, partition)
        removeCounter(Name.recordsConsumed, Help.recordsConsumed, labels)
        removeGauge(Name.consumerLag, Help.consumerLag, labels)
    }

    /// Drops a task's series (watermark, event-time lag, state entries) when the task goes away.
    package func removeTask(_ task: String) {
        removeGauge(Name.watermarkMs, Help.watermarkMs, [("task", task)])
        removeGauge(Name.eventTimeLagMs, Help.eventTimeLagMs, [("task", task)])
        removeGauge(Name.stateEntries, Help.stateEntries, [("store", "users-\(task)")])
        removeGauge(Name.stateEntries, Help.stateEntries, [("store", "items-\(task)")])
        removeGauge(Name.stateEntries, Help.stateEntries, [("store", "joiner-\(task)")])
        removeGauge(Name.stateEntries, Help.stateEntries, [("store", "join-waiting-\(task)")])
    }

    /// Sets `freshet_ready` from a readiness answer and returns it (handy inside the `/readyz` closure).
    @discardableResult
    package func record(_ readiness: Readiness) -> Readiness {
        ready.set(readiness.isReady ? 1 : 0)
        return readiness
    }

    /// Observes freshness for a write acknowledged at `ackedAtMs` of an event at `eventTimeMs`
    /// (epoch milliseconds; clock skew clamps to 0 seconds).
    package func observeFreshness(eventTimeMs: Int64, ackedAtMs: Int64) {
        freshnessSeconds.record(max(0, Double(ackedAtMs - eventTimeMs) / 1000))
    }

    /// Every series in the Prometheus text format 0.0.4 (families in no fixed order).
    package func render() -> String { registry.emitToString() }

    // MARK: Helpers

    /// Labels are passed in one fixed (sorted) order: the registry tells series
    /// apart by the ordered label list.
    static func partitionLabels(_ topic: String, _ partition: some BinaryInteger) -> [(String, String)] {
        [("partition", String(partition)), ("topic", topic)]
    }

    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    static func counter(_ registry: PrometheusCollectorRegistry, _ factory: PrometheusMetricsFactory,
                        _ name: String, _ help: String, labels: [(String, String)]) -> CoreMetrics.Counter {
        let handler = labels.isEmpty ? registry.makeCounter(descriptor: descriptor(name, help))
            : registry.makeCounter(descriptor: descriptor(name, help), labels: labels)
        return CoreMetrics.Counter(label: name, dimensions: labels, handler: handler, factory: factory)
    }

    static func meter(_ registry: PrometheusCollectorRegistry, _ factory: PrometheusMetricsFactory,
                      _ name: String, _ help: String, labels: [(String, String)]) -> Meter {
        let handler = labels.isEmpty ? registry.makeGauge(descriptor: descriptor(name, help))
            : registry.makeGauge(descriptor: descriptor(name, help), labels: labels)
        return Meter(label: name, dimensions: labels, handler: handler, factory: factory)
    }

    private func removeCounter(_ name: String, _ help: String, _ labels: [(String, String)]) {
        registry.unregisterCounter(registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels))
    }

    private func removeGauge(_ name: String, _ help: String, _ labels: [(String, String)]) {
        registry.unregisterGauge(registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels))
    }
}
