// Freshet's metrics, all served by the admin server on GET /metrics
// (Prometheus text format 0.0.4, loopback by default).
//
// | name | type | labels | meaning |
// |---|---|---|---|
// | freshet_records_consumed_total | counter | topic, partition | Kafka records taken from a source or repartition topic partition (good and bad). Series are removed when the partition is revoked. |
// | freshet_dead_letters_total | counter | reason | Bad input sent to the dead-letter topic, by reason (e.g. not_json, missing_field, unknown_action, absurd_timestamp). |
// | freshet_late_events_dropped_total | counter | – | Events whose pane had already left its window when they arrived (windowed features only). |
// | freshet_consumer_lag | gauge | topic, partition | High watermark minus the next offset to read, from Fetch high watermarks. Removed on revoke. |
// | freshet_watermark_ms | gauge | task | A task's event-time watermark, epoch milliseconds. |
// | freshet_event_time_lag_ms | gauge | task | Wall clock minus the task's watermark, milliseconds. |
// | freshet_freshness_seconds | histogram | – | Event time of an event to Redis acknowledging the write that contains it (buckets 0.005 s..60 s). |
// | freshet_redis_pipeline_seconds | histogram | – | Time from sending a Redis pipeline to its last reply. |
// | freshet_redis_batch_commands | histogram | – | Commands per Redis pipeline. |
// | freshet_checkpoint_seconds | histogram | – | Duration of one checkpoint (state snapshot and offsets, saved together). |
// | freshet_checkpoint_bytes | gauge | – | Size of the latest checkpoint, bytes. |
// | freshet_checkpoint_failures_total | counter | – | Checkpoints that failed. |
// | freshet_rebalances_total | counter | – | Consumer-group rebalances seen (assign and revoke callbacks that changed the assignment). |
// | freshet_assigned_partitions | gauge | – | Partitions this instance owns now (all its input topics). |
// | freshet_state_entries | gauge | store | Keys held in a keyed state store. |
// | freshet_repartition_duplicates_dropped_total | counter | – | Repartition records dropped as duplicates by (source partition, offset). |
// | freshet_redis_fenced_writes_total | counter | – | Redis writes refused by fencing because a newer owner holds the partition. |
// | freshet_redis_rejected_keys_total | counter | reason | Keys Redis refused for good (reason: the server's error prefix, e.g. WRONGTYPE); each is logged with its key, the rest of its batch lands. |
// | freshet_checkpoint_store_lost_total | counter | evidence | Tasks found lost by the checkpoint store (evidence: epoch_missing, epoch_rolled_back, checkpoint_missing, checkpoint_rolled_back); each is rebuilt by replaying its input. |
// | freshet_ready | gauge | – | 1 when /readyz answers 200, else 0. |
// | freshet_build_info | gauge | version, librdkafka | Always 1; labels carry the Freshet version and the librdkafka version in use. |

/// Freshet's metric families on one registry, with typed accessors.
///
/// Accessors with labels return the registry's handle for that label set (the
/// same object every call). They take a lock, so a task should fetch its handles
/// once (e.g. when a partition is assigned) and keep them.
public final class FreshetMetrics: Sendable {
    public let registry: MetricsRegistry

    public enum Name {
        public static let recordsConsumed = "freshet_records_consumed_total"
        public static let deadLetters = "freshet_dead_letters_total"
        public static let lateEventsDropped = "freshet_late_events_dropped_total"
        public static let consumerLag = "freshet_consumer_lag"
        public static let watermarkMs = "freshet_watermark_ms"
        public static let eventTimeLagMs = "freshet_event_time_lag_ms"
        public static let freshnessSeconds = "freshet_freshness_seconds"
        public static let redisPipelineSeconds = "freshet_redis_pipeline_seconds"
        public static let redisBatchCommands = "freshet_redis_batch_commands"
        public static let checkpointSeconds = "freshet_checkpoint_seconds"
        public static let checkpointBytes = "freshet_checkpoint_bytes"
        public static let checkpointFailures = "freshet_checkpoint_failures_total"
        public static let rebalances = "freshet_rebalances_total"
        public static let assignedPartitions = "freshet_assigned_partitions"
        public static let stateEntries = "freshet_state_entries"
        public static let repartitionDuplicatesDropped = "freshet_repartition_duplicates_dropped_total"
        public static let deadLetterDuplicatesSkipped = "freshet_dead_letter_duplicates_skipped_total"
        public static let redisFencedWrites = "freshet_redis_fenced_writes_total"
        public static let ready = "freshet_ready"
        public static let buildInfo = "freshet_build_info"
    }

    public enum Buckets {
        /// Event time to Redis ack: 5 ms .. 60 s.
        public static let freshnessSeconds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        /// One Redis pipeline round trip: 0.5 ms .. 2.5 s.
        public static let redisPipelineSeconds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
        /// Commands in one pipeline: 1 .. 10,000.
        public static let redisBatchCommands: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
        /// One checkpoint: 1 ms .. 30 s.
        public static let checkpointSeconds: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    }

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
        static let deadLetterDuplicatesSkipped = "Dead letters not sent again by a replay (already sent before a crash)."
        static let redisFencedWrites = "Redis writes refused by fencing (a newer owner holds the partition)."
        static let ready = "1 when the instance is ready, else 0."
        static let buildInfo = "Build information; the value is always 1."
    }

    public let lateEventsDropped: Counter
    public let freshnessSeconds: Histogram
    public let redisPipelineSeconds: Histogram
    public let redisBatchCommands: Histogram
    public let checkpointSeconds: Histogram
    public let checkpointBytes: Gauge
    public let checkpointFailures: Counter
    public let rebalances: Counter
    public let assignedPartitions: Gauge
    public let repartitionDuplicatesDropped: Counter
    public let deadLetterDuplicatesSkipped: Counter
    public let redisFencedWrites: Counter
    public let ready: Gauge

    static let redisRejectedKeys = "freshet_redis_rejected_keys_total"
    static let checkpointStoreLost = "freshet_checkpoint_store_lost_total"

    /// `freshet_redis_rejected_keys_total{reason}`.
    public func redisRejectedKeys(reason: String) -> Counter {
        registry.counter(Self.redisRejectedKeys, help: "Keys Redis refused for good (e.g. WRONGTYPE); the rest of their batch landed.",
                         labels: ["reason": reason])
    }

    /// `freshet_checkpoint_store_lost_total{evidence}`.
    public func checkpointStoreLost(evidence: String) -> Counter {
        registry.counter(Self.checkpointStoreLost,
                         help: "Tasks the checkpoint store lost (Redis restarted empty, flushed, failed over, evicted); each is rebuilt by replay.",
                         labels: ["evidence": evidence])
    }

    /// Registers every family (labelled ones appear with HELP/TYPE before their first series).
    public init(registry: MetricsRegistry = MetricsRegistry(), version: String, librdkafkaVersion: String) {
        self.registry = registry
        let r = registry
        r.declare(Name.recordsConsumed, help: Help.recordsConsumed, type: .counter)
        r.declare(Name.deadLetters, help: Help.deadLetters, type: .counter)
        lateEventsDropped = r.counter(Name.lateEventsDropped, help: Help.lateEventsDropped)
        r.declare(Name.consumerLag, help: Help.consumerLag, type: .gauge)
        r.declare(Name.watermarkMs, help: Help.watermarkMs, type: .gauge)
        r.declare(Name.eventTimeLagMs, help: Help.eventTimeLagMs, type: .gauge)
        freshnessSeconds = r.histogram(Name.freshnessSeconds, help: Help.freshnessSeconds,
                                       buckets: Buckets.freshnessSeconds)
        redisPipelineSeconds = r.histogram(Name.redisPipelineSeconds, help: Help.redisPipelineSeconds,
                                           buckets: Buckets.redisPipelineSeconds)
        redisBatchCommands = r.histogram(Name.redisBatchCommands, help: Help.redisBatchCommands,
                                         buckets: Buckets.redisBatchCommands)
        checkpointSeconds = r.histogram(Name.checkpointSeconds, help: Help.checkpointSeconds,
                                        buckets: Buckets.checkpointSeconds)
        checkpointBytes = r.gauge(Name.checkpointBytes, help: Help.checkpointBytes)
        checkpointFailures = r.counter(Name.checkpointFailures, help: Help.checkpointFailures)
        rebalances = r.counter(Name.rebalances, help: Help.rebalances)
        assignedPartitions = r.gauge(Name.assignedPartitions, help: Help.assignedPartitions)
        r.declare(Name.stateEntries, help: Help.stateEntries, type: .gauge)
        repartitionDuplicatesDropped = r.counter(Name.repartitionDuplicatesDropped,
                                                 help: Help.repartitionDuplicatesDropped)
        deadLetterDuplicatesSkipped = r.counter(Name.deadLetterDuplicatesSkipped, help: Help.deadLetterDuplicatesSkipped)
        redisFencedWrites = r.counter(Name.redisFencedWrites, help: Help.redisFencedWrites)
        ready = r.gauge(Name.ready, help: Help.ready)
        r.declare(Self.redisRejectedKeys, help: "Keys Redis refused for good (e.g. WRONGTYPE); the rest of their batch landed.", type: .counter)
        r.declare(Self.checkpointStoreLost,
                  help: "Tasks the checkpoint store lost (Redis restarted empty, flushed, failed over, evicted); each is rebuilt by replay.",
                  type: .counter)
        r.gauge(Name.buildInfo, help: Help.buildInfo,
                labels: ["version": version, "librdkafka": librdkafkaVersion]).set(1)
    }

    // MARK: Labelled accessors

    /// `freshet_records_consumed_total{topic,partition}`.
    public func recordsConsumed(topic: String, partition: some BinaryInteger) -> Counter {
        registry.counter(Name.recordsConsumed, help: Help.recordsConsumed,
                         labels: ["topic": topic, "partition": String(partition)])
    }

    /// `freshet_dead_letters_total{reason}`.
    public func deadLetters(reason: String) -> Counter {
        registry.counter(Name.deadLetters, help: Help.deadLetters, labels: ["reason": reason])
    }

    /// `freshet_consumer_lag{topic,partition}`.
    public func consumerLag(topic: String, partition: some BinaryInteger) -> Gauge {
        registry.gauge(Name.consumerLag, help: Help.consumerLag,
                       labels: ["topic": topic, "partition": String(partition)])
    }

    /// `freshet_watermark_ms{task}`; `task` names stage and partition, e.g. "source/interactions/3".
    public func watermarkMs(task: String) -> Gauge {
        registry.gauge(Name.watermarkMs, help: Help.watermarkMs, labels: ["task": task])
    }

    /// `freshet_event_time_lag_ms{task}`.
    public func eventTimeLagMs(task: String) -> Gauge {
        registry.gauge(Name.eventTimeLagMs, help: Help.eventTimeLagMs, labels: ["task": task])
    }

    /// `freshet_state_entries{store}`.
    public func stateEntries(store: String) -> Gauge {
        registry.gauge(Name.stateEntries, help: Help.stateEntries, labels: ["store": store])
    }

    // MARK: Revocation

    /// Drops the per-partition series of a revoked partition (records consumed, lag).
    public func removePartition(topic: String, partition: some BinaryInteger) {
        let labels = ["topic": topic, "partition": String(partition)]
        registry.remove(Name.recordsConsumed, labels: labels)
        registry.remove(Name.consumerLag, labels: labels)
    }

    /// Drops a task's series (watermark, event-time lag, state entries) when the task goes away.
    public func removeTask(_ task: String) {
        registry.remove(Name.watermarkMs, labels: ["task": task])
        registry.remove(Name.eventTimeLagMs, labels: ["task": task])
        registry.remove(Name.stateEntries, labels: ["store": "users-\(task)"])
        registry.remove(Name.stateEntries, labels: ["store": "items-\(task)"])
    }

    /// Sets `freshet_ready` from a readiness answer and returns it (handy inside the `/readyz` closure).
    @discardableResult
    public func record(_ readiness: Readiness) -> Readiness {
        ready.set(readiness.isReady ? 1 : 0)
        return readiness
    }

    /// Convenience: observes freshness for a write acknowledged at `ackMs` of an event at `eventMs`.
    public func observeFreshness(eventTimeMs: Int64, ackedAtMs: Int64) {
        freshnessSeconds.observe(max(0, Double(ackedAtMs - eventTimeMs) / 1000))  // clock skew clamps to 0
    }

    /// Renders the registry (Prometheus text format 0.0.4).
    public func render() -> String { registry.render() }
}
