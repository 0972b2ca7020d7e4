import CoreMetrics
import Foundation
import FreshetCore
import FreshetEmbeddings
import FreshetFeatures
import FreshetKafka
import FreshetRedis
import Logging

/// The processor: one consumer-group member running every task it is assigned.
///
/// One processing thread (the caller of `run`) polls Kafka, feeds records to
/// tasks, and drives flushes and checkpoints, so task state needs no locks
/// (Flink's mailbox model). librdkafka and the Redis writer run on threads of
/// their own. Rebalance callbacks run inside `poll`, on this same thread: they
/// are the checkpoint boundary (revoke: flush, checkpoint, commit, drop;
/// assign: fence, restore, seek).
///
/// Thread-safety: all mutable state belongs to the thread inside `run`; other
/// threads may only call `requestStop()` and read `stats` (itself Sendable).
package final class StreamProcessor: @unchecked Sendable {
    package let topology: Topology
    package let options: ProcessorOptions
    let logger: Logger
    let keys: RedisKeys
    let renderer: FeatureRenderer
    let decoder: EventDecoder
    let panes: PaneSpec
    let trending: TrendingDecay
    package let stats = ProcessorStats()
    /// Users' interaction counts as flushed in this process (the examples' serving feature).
    let interactionCounts = InteractionCountView()
    /// Spectral refreshes off the processing thread (embeddings on).
    var refresher: EmbeddingRefresher?
    var positivesAtLastRefresh = 0
    /// The refresh version before a bounded run's final refresh, once that
    /// refresh was started ahead of the final checkpoint (every row local).
    var finalRefreshBaseVersion: Int64?
    var lastEmbeddingSyncMs: Int64 = 0
    var forceEmbeddingSync = false
    /// Set while a bounded run ends with a final refresh still to come: its
    /// republication rewrites every item and user vector, so the last flush
    /// before it writes none (else the users touched since the last sync,
    /// up to a sync interval's worth, ~100 k on the 3 M-event benchmark,
    /// are written and overwritten a few seconds later).
    var embeddingSyncHeld = false
    /// The refresh whose vectors Redis serves, and when it was switched to (`embeddings.publish_interval`).
    var publishedVectors: ItemVectorSet?
    var publishedVectorsSinceMs: Int64 = 0
    /// A bounded run's estimate of its remaining wall time (`finalRefreshComesFirst`).
    var endEstimate = BoundedRunEndEstimate()
    /// Set after a bounded run's final refresh: publish it whatever the interval.
    var switchVectorsNow = false
    /// A bounded run reached its end (every assigned partition at its end
    /// offset, or nothing held for 10 s while other members finish it);
    /// false when it stopped on a signal before. Read after `run` returned.
    package internal(set) var boundedRunEnded = false

    /// Makes the Kafka and Redis clients (`LiveConnections`; a test's in-memory cluster).
    let connections: any EngineConnections
    /// The wall clock, ms since the epoch (injected by tests).
    let clock: @Sendable () -> Int64
    var consumer: (any EngineConsumer)!
    var producer: (any EngineProducer)!
    var output: KafkaTaskOutput!
    var writer: RedisWriter!
    /// Writes of this instance refused by their epoch check so far (tests and diagnostics).
    package var refusedWriteCount: Int { writer?.refusedWriteCount ?? 0 }
    var control: (any RedisStore)!

    // Topic layout, resolved at start (`prepareTopics`).
    var interactionPartitions: Int32 = 0
    var impressionPartitions: Int32 = 0
    var repartitionPartitions: Int32 = 0
    /// Item partitions a bounded run's final refresh ran without (not marked
    /// final within `embeddings.final_wait`); nil when none.
    var finalRefreshMissing: [Int32]?
    /// The item partitions this instance marked final at the end of a
    /// bounded run (nil: none yet); mid-run refreshes stop once set.
    var finalMarked: Set<Int32>?
    /// Tasks whose final vectors no instance reported written within
    /// `embeddings.final_wait` of this one's (nil when none).
    var finalPublicationMissing: [String]?
    /// When the end of a bounded run stops waiting for the group's final markers.
    var groupEndDeadlineMs: Int64 = 0
    /// "bounded run complete" was logged (once: the loop may go on after it).
    var completeLogged = false
    /// The examples topic's partitions, as it exists (examples on).
    var examplePartitions: Int32 = 1
    var itemTopic: String { Topology.itemRepartitionTopic(group: options.group) }
    var userTopic: String { Topology.userRepartitionTopic(group: options.group) }
    var countsTopic: String { Topology.countsRepartitionTopic(group: options.group) }

    /// The tasks this instance owns, their epochs, and the routing of records to them.
    let taskManager: TaskManager
    /// The commit protocol (checkpoints, offset commits, blocked commits).
    lazy var checkpointer = Checkpointer(keys: keys, tasks: taskManager, stats: stats, logger: logger, host: self)

    var lastFlushMs: Int64 = 0
    var lastMarkerMs: Int64 = 0
    var lastFinalMarkerMs: Int64 = 0
    var emptySinceMs: Int64?
    /// Dead-letter topic end offsets at start-up, and the floors last recorded
    /// per source task (see StreamProcessor+DeadLetters.swift).
    var deadLetterStart: [Int32: Int64] = [:]
    var deadLetterFloorWritten: [TaskId: String] = [:]
    /// Filled for the duration of one assignment (see `assign`).
    var deadLettersSentBefore: [TaskId: Set<Int64>] = [:]
    /// The dead-letter topic read once per rebuild pass (see `withRebuildPass`).
    var rebuildPassLetters = RebuildPassLetters()
    var recordsSinceFlush = 0
    var lastGaugeMs: Int64 = 0
    /// Cumulative task counts already added to metrics (tasks come and go; counters only grow).
    var reportedTotals: [String: Int] = [:]
    var consumedCounters: [Int64: CoreMetrics.Counter] = [:]
    var consumedRun = ConsumedRun()
    var everAssigned = false
    /// Whether this instance is a member of the consumer group now (readiness):
    /// set by each assignment, cleared when the partitions are lost (the session
    /// timed out, e.g. during a broker outage) until the instance has rejoined.
    var memberOfGroup = false
    /// Warns while the instance stays out of its group (`GroupJoinWatch`).
    var groupJoinWatch = GroupJoinWatch()
    let stopFlag = StopFlag()
    /// Set by a rebalance callback that cannot continue (it cannot throw through librdkafka).
    var fatalError: Error?
    /// This instance's entry among the group's members (`GroupTopologyRegistry`).
    var groupRegistry: GroupTopologyRegistry
    /// The last warning about another member's settings (logged once, not every heartbeat).
    var groupRegistryWarning: String?
    /// Wall clock of the latest reading of Redis's eviction settings, ms, and
    /// the warning they gave (logged once per change).
    var lastEvictionCheckMs: Int64 = 0
    var evictionWarning: String?
    /// Whether this run recorded its `Topology.stateSettings` (at its first checkpoint).
    var stateSettingsRecorded = false
    /// Keys Redis refused for good in this run (a bounded run with any exits non-zero).
    var rejectedKeyCount = 0
    /// The keys behind `rejectedKeyCount`.
    var rejectedKeys: Set<String> = []
    /// The stop found the broker not acknowledging produced records (see `shutdown`).
    var stoppedWithUnacknowledgedOutput = false
    /// A write to `trending` was refused, or an item task was just assigned:
    /// the next flush writes every item task's trending top K (`RenderContext.rewriteTrending`).
    var trendingRewriteDue = false
    /// Refused keys that name no user or item of a task, or past a task's
    /// bound (nothing to write again; a bounded run fails on them). Bounded
    /// like the per-task sets.
    var refusedForGood: Set<String> = []
    /// The most refused entities a task keeps (and its checkpoint carries,
    /// ~10 bytes each); the rest count in `refusedForGood`: thousands of
    /// foreign keys are an operator's mistake to fix by a replay.
    static let refusedEntitiesPerTask = 10_000

    /// Keys Redis refused and had not taken when the tasks last wrote them:
    /// the refused users and items as of each task's latest checkpoint here,
    /// `trending` when its latest write was refused, and keys of no entity.
    var stillRefusedKeys: Int {
        checkpointer.refused.values.reduce(0) { $0 + $1.count } + (trendingRewriteDue ? 1 : 0) + refusedForGood.count
    }
    /// Tasks being rebuilt after the checkpoint store lost them, with the input
    /// offset they had reached before (rebuilt once they pass it again).
    var rebuildingTasks: [TaskId: Int64] = [:]
    /// Redis's `run_id` (INFO server) when last checked: a change means Redis restarted.
    var redisRunId: String?
    /// Every task whose checkpoint store loss was announced, in order (a task
    /// lost twice appears twice): the stop compares its length before it
    /// began and after it left the group (`storeLostAtStop`).
    var storeLostTasks: [TaskId] = []
    /// Tasks the store lost during the stop itself, or lost before it and
    /// still rebuilding when it came: not rebuilt in this run, `finish`
    /// fails naming them (the next run rebuilds them).
    var storeLostAtStop: [TaskId] = []
    /// Redis restarted while the run stopped and kept its checkpoints, after
    /// a final republication that followed the last of them (`storeLostSince`).
    var storeRestartedAtStop = false
    /// Watermark alignment of source partitions (nil: `event_time.max_drift` off;
    /// StreamProcessor+Alignment.swift), and what it keeps per owned source task:
    /// the records read when its partition last reported its end, whether it
    /// was paused in this assignment, and partitions whose resume failed as they left.
    var alignment: WatermarkAlignment<DuplicateFilter.Source>?
    var endReached: [TaskId: Int] = [:]
    var pausedOnce: Set<TaskId> = []
    var unresumed: Set<TopicPartition> = []
    /// Pauses alignment made in this run (`freshet_alignment_pauses_total`; the benchmark prints it).
    package internal(set) var alignmentPauseCount = 0

    // Views kept for the engine's extensions.
    var sourceTasks: [TopicPartition: SourceTask] { taskManager.sourceTasks }
    var itemTasks: [Int32: ItemTask] { taskManager.itemTasks }
    var userTasks: [Int32: UserTask] { taskManager.userTasks }
    /// Fencing epochs of the owned tasks (kept by `TaskManager`).
    var epochs: [TaskId: Int64] { taskManager.epochs }
    var allTaskIds: [TaskId] { taskManager.ids }
    /// Subscribed topics, in the consumer's topic-index order.
    var topics: [String] { taskManager.inputs.names }
    /// Why nothing may be checkpointed or committed any more (see `Checkpointer.commitsBlocked`).
    var commitsBlocked: String? { checkpointer.commitsBlocked }

    /// - Parameters:
    ///   - connections: makes the Kafka and Redis clients; tests pass an in-memory cluster.
    ///   - clock: the wall clock in ms since the epoch (flush, checkpoint and
    ///     marker intervals, epochs); tests pass a manual one.
    package init(topology: Topology, options: ProcessorOptions, logger: Logger,
                 connections: any EngineConnections = LiveConnections(),
                 clock: @escaping @Sendable () -> Int64 = StreamProcessor.wallClockMs) {
        self.connections = connections
        self.clock = clock
        self.topology = topology
        self.options = options
        self.logger = logger
        self.keys = RedisKeys(prefix: topology.redis.keyPrefix, group: options.group, hashTagged: options.redisTarget.isCluster)
        self.trending = TrendingDecay(halfLifeMs: topology.trending.halfLifeMs)
        self.renderer = FeatureRenderer(keys: keys, trendingTopK: topology.trending.topK, trending: trending,
                                        halfLifeMs: topology.trending.halfLifeMs,
                                        feast: topology.feast.enabled ? FeastRows(topology.feast) : nil,
                                        freshetHashes: topology.feast.freshetHashes)
        self.decoder = EventDecoder(minTimestampMs: topology.eventTime.minTimestampMs,
                                    maxFutureSkewMs: topology.eventTime.maxFutureSkewMs)
        self.panes = PaneSpec(paneMs: topology.windows.paneMs, windowPanes: topology.windows.panesPerWindow)
        self.taskManager = TaskManager(inputs: InputTopics(), metrics: stats.metrics)
        self.groupRegistry = GroupTopologyRegistry(memberId: GroupTopologyRegistry.makeMemberId(), settings: topology.groupSettings,
                                                   group: options.group)
        if let drift = topology.alignmentMaxDriftMs {
            // A partition that stops advancing stops holding the others back
            // after the idle timeout (also in bounded runs, where idleness is off).
            alignment = WatermarkAlignment(settings: .init(maxDriftMs: drift, stallTimeoutMs: topology.eventTime.idleTimeoutMs))
        }
    }

    /// After a run with embeddings: refreshes, items of the last one, its seconds, and table sizes
    /// (taken at shutdown, before the tasks are dropped).
    package private(set) var embeddingSummary: String?

    func makeEmbeddingSummary() -> String? {
        guard let refresher else { return nil }
        let last = refresher.lastRefresh
        let rows = itemTasks.values.reduce(0) { $0 + ($1.embeddings?.rows.count ?? 0) }
        let entries = itemTasks.values.reduce(0) { $0 + ($1.embeddings?.rows.entryCount ?? 0) }
        let bytes = itemTasks.values.reduce(0) { $0 + ($1.embeddings?.rows.approximateBytes ?? 0) }
        let entryBytes = itemTasks.values.reduce(0) { $0 + ($1.embeddings?.rows.entryBytes ?? 0) }
        return "refreshes \(refresher.refreshes) (refresh leader: \(refresher.isLeader)), \(refresher.loadedSets) loaded from the leader, last over \(last.items) items in \(String(format: "%.2f", last.seconds)) s; "
            + "\(rows) rows, \(entries) co-occurrence entries, ~\(bytes / 1_048_576) MiB of rows "
            + "(\(CooccurrenceRows.bytesPerRow) B a row + \(String(format: "%.1f", Double(entryBytes) / Double(max(entries, 1)))) B an entry as allocated)"
            + "; user vectors written \(userVectorsWritten.written), left out unchanged \(userVectorsWritten.unchanged)"
            + (topology.embeddings.examples ? joinerSummary : "")
    }

    /// The examples' join state: the largest number of (user, item) entries
    /// a joining task (counts tasks, or item tasks without the counts stage)
    /// held at once, summed over this instance's.
    private var joinerSummary: String {
        let peak = taskManager.ordered.reduce(0) { $0 + (joinerEntries($1.id, peak: true) ?? 0) }
        let held = taskManager.ordered.reduce(0) { $0 + (($1 as? CountTask)?.peakHeld ?? 0) }
        let joiners = topology.routesExamplesThroughCounts ? "counts tasks" : "item tasks"
        return "; joiner peak \(peak) entries (summed over \(joiners)); counts stage peak \(held) held records (summed over counts tasks)"
    }

    /// Asks the processing loop to stop gracefully (safe from any thread, e.g. a signal handler).
    package func requestStop() { stopFlag.set() }

    var kafkaConfig: KafkaConfig {
        // Low-latency defaults (the topology's `kafka:` section and the environment
        // override them): a fetch the broker holds waits at most 10 ms for more
        // data, and the producer batches for at most 2 ms. Two hops (source, then
        // repartition) pay these, so librdkafka's 500 ms / 5 ms would dominate freshness.
        var properties: [String: String] = [:]
        for (key, value) in topology.kafka { properties[key] = value }
        for (key, value) in options.kafkaProperties { properties[key] = value }
        properties["bootstrap.servers"] = options.brokers
        return KafkaConfig(properties: properties)
    }

    // MARK: - Start-up

    /// Creates the topics Freshet reads and writes (idempotently) and learns partition counts.
    func prepareTopics() throws {
        let admin = try connections.makeAdmin(config: kafkaConfig)
        let sourceNames = [topology.sources.interactions, topology.sources.impressions]
        var missing: [NewTopic] = []
        for name in sourceNames where try admin.partitionCount(topic: name, timeoutMs: 5000) == nil {
            missing.append(NewTopic(name: name, partitions: Int32(topology.sources.partitions)))
        }
        if !missing.isEmpty {
            logger.info("creating source topics", metadata: ["topics": "\(missing.map(\.name))"])
            try admin.createTopics(missing, timeoutMs: 10_000)
        }
        interactionPartitions = Int32(try admin.partitionCount(topic: topology.sources.interactions, timeoutMs: 5000) ?? topology.sources.partitions)
        impressionPartitions = Int32(try admin.partitionCount(topic: topology.sources.impressions, timeoutMs: 5000) ?? topology.sources.partitions)
        let wanted = topology.repartitionPartitions > 0
            ? Int32(topology.repartitionPartitions) : max(interactionPartitions, impressionPartitions)
        var internalTopics = [NewTopic(name: itemTopic, partitions: wanted),
                              NewTopic(name: topology.deadLetterTopic, partitions: 1)]
        let writesExamples = topology.embeddings.enabled && topology.embeddings.examples
        if writesExamples {
            internalTopics.append(NewTopic(name: topology.embeddings.examplesTopic, partitions: wanted))
        }
        if !topology.sources.keyedByUser {
            internalTopics.append(NewTopic(name: userTopic, partitions: wanted))
        }
        if topology.routesExamplesThroughCounts {
            internalTopics.append(NewTopic(name: countsTopic, partitions: wanted))
        }
        try admin.createTopics(internalTopics, timeoutMs: 10_000)
        // An existing repartition topic keeps its partition count: records are
        // routed by it, so read it back rather than assume.
        repartitionPartitions = Int32(try admin.partitionCount(topic: itemTopic, timeoutMs: 5000) ?? Int(wanted))
        // The examples topic may exist with any count (its default name is
        // shared by every group): examples are spread over the partitions it
        // has. (Assuming the repartition topics' count sent examples to
        // partitions it lacked: every start failed, _UNKNOWN_PARTITION.)
        if writesExamples {
            examplePartitions = Int32(try admin.partitionCount(topic: topology.embeddings.examplesTopic, timeoutMs: 5000) ?? Int(wanted))
        }
        if !topology.sources.keyedByUser,
           let users = try admin.partitionCount(topic: userTopic, timeoutMs: 5000), Int32(users) != repartitionPartitions {
            throw ProcessorError.configuration("\(userTopic) has \(users) partitions but \(itemTopic) has \(repartitionPartitions); delete one or make them equal")
        }
        if topology.routesExamplesThroughCounts,
           let counts = try admin.partitionCount(topic: countsTopic, timeoutMs: 5000), Int32(counts) != repartitionPartitions {
            throw ProcessorError.configuration("\(countsTopic) has \(counts) partitions but \(itemTopic) has \(repartitionPartitions); delete one or make them equal")
        }
        // Every dead letter this instance sends lies at or after these offsets.
        deadLetterStart = Dictionary(uniqueKeysWithValues: try connections.endOffsets(
            config: kafkaConfig, topics: [topology.deadLetterTopic]).map { ($0.key.partition, $0.value) })
        var subscribe: [TaskId.Stage] = [.interactions, .impressions, .items]
        if !topology.sources.keyedByUser { subscribe.append(.users) }
        if topology.routesExamplesThroughCounts { subscribe.append(.counts) }
        taskManager.inputs = InputTopics(topics: [(.interactions, topology.sources.interactions),
                                                  (.impressions, topology.sources.impressions),
                                                  (.items, itemTopic), (.users, userTopic), (.counts, countsTopic)],
                                         subscribe: subscribe)
    }

    /// Creates tasks for assigned partitions (see `TaskFactory`).
    var taskFactory: TaskFactory {
        TaskFactory(topology: topology, stopAtEnd: options.stopAtEnd, decoder: decoder, panes: panes, trending: trending,
                    interactionPartitions: interactionPartitions, impressionPartitions: impressionPartitions,
                    repartitionPartitions: repartitionPartitions,
                    makeUserEmbeddingSide: { [unowned self] in makeUserEmbeddingSide() },
                    makeItemEmbeddingSide: { [unowned self] in makeItemEmbeddingSide() })
    }

    /// The consumer's configuration: `kafkaConfig` with librdkafka's fetch
    /// tuning of `KafkaConsumer.streamingDefaults` (10 ms `fetch.wait.max.ms`
    /// and `fetch.queue.backoff.ms`, a 16 MiB prefetch queue) for each
    /// property the topology and environment do not set.
    var consumerConfig: KafkaConfig {
        KafkaConsumer.withStreamingDefaults(kafkaConfig)
    }

    /// The largest message this instance produces: `output.max_message_bytes`,
    /// or a smaller `message.max.bytes` set among the raw Kafka properties.
    var maxMessageBytes: Int {
        min(topology.output.maxMessageBytes, kafkaConfig["message.max.bytes"].flatMap { Int($0) } ?? .max)
    }

    func connect() throws {
        producer = try connections.makeProducer(config: kafkaConfig.with("linger.ms", topology.kafka["linger.ms"] ?? "2")
            .with("message.max.bytes", String(maxMessageBytes)))
        producer.watchDeliveredOffsets(topic: topology.deadLetterTopic)
        output = KafkaTaskOutput(producer: producer, itemTopic: itemTopic, itemPartitions: repartitionPartitions,
                                 userTopic: userTopic, userPartitions: repartitionPartitions,
                                 countsTopic: topology.routesExamplesThroughCounts ? countsTopic : nil,
                                 deadLetterTopic: topology.deadLetterTopic, maxMessageBytes: maxMessageBytes)
        if topology.embeddings.enabled && topology.embeddings.examples {
            output.examplesTopic = topology.embeddings.examplesTopic
            output.examplePartitions = examplePartitions
        }
        if options.redisTarget.isCluster && (keys.prefix.contains("{") || keys.group.contains("{")) {
            // The first "{...}" of a key is its hash tag: task keys must keep theirs.
            throw ProcessorError.redis("on a Redis Cluster, redis.key_prefix and the group must not contain \"{\" (prefix \"\(keys.prefix)\", group \"\(keys.group)\")")
        }
        control = try connections.makeRedisStore(target: options.redisTarget, shouldStop: { [stopFlag] in stopFlag.isSet })
        try checkEviction()
        try checkUserStateLayout()
        if topology.embeddings.enabled {
            refresher = EmbeddingRefresher(config: topology.embeddings.cooccurrenceConfig,
                                           finalIterations: topology.embeddings.finalIterations, redis: options.redisTarget,
                                           shared: SharedVectorSet(keys: keys))
        }
        writer = try RedisWriter(store: connections.makeRedisStore(target: options.redisTarget, shouldStop: { false }),
                                 keys: keys, observer: stats, giveUp: { [stopFlag] in stopFlag.isSet })
        writer.start()
        consumer = try connections.makeConsumer(config: consumerConfig, groupId: options.group, topics: topics,
                                                rebalance: RebalanceBridge(processor: self))
    }

    var admin: AdminServer?
    var progress: ProgressReporter?

    /// The admin HTTP server (`/metrics`, `/healthz`, `/readyz`) and the progress line.
    func startObservability() throws {
        if topology.admin.port >= 0 {
            let stats = self.stats
            let server = try AdminServer(host: topology.admin.host, port: UInt16(topology.admin.port),
                                         allowNonLoopback: topology.admin.allowNonLoopback,
                                         metrics: { stats.metrics.render() }, readiness: { stats.readiness },
                                         tasks: { stats.tasks.snapshot.json(readiness: stats.readiness) })
            try server.start()
            admin = server
            logger.info("admin server listening", metadata: ["address": "http://\(topology.admin.host):\(server.port)"])
        }
        if topology.progressIntervalMs > 0 {
            let stats = self.stats
            let reporter = ProgressReporter(interval: Double(topology.progressIntervalMs) / 1000,
                                            events: { stats.sourceEventsConsumed.value }, lag: { stats.sourceLag },
                                            watermarkMs: { stats.watermarkMs })
            reporter.start()
            progress = reporter
        }
    }

    // MARK: - The loop

    /// Runs until stopped (SIGTERM via `requestStop`) or, in a bounded run, until
    /// every assigned partition reached its end. Blocking: call it from a thread
    /// of its own, not from Swift's cooperative pool.
    ///
    /// - Throws: a `ProcessorError` when a fatal error stopped the run (then
    ///   nothing was checkpointed or committed past unacknowledged effects), when
    ///   Redis writes had to be abandoned (SIGTERM while Redis refused them), or
    ///   when a bounded run finished with keys Redis rejected or checkpoints that
    ///   did not land. A graceful stop of an unbounded run returns normally.
    package func run() throws {
        try start()
        do {
            try processLoop()
        } catch {
            stopOnFatalError(error)
            throw error
        }
        try finish()
    }

    /// The first part of `run`: creates the topics, connects, starts the
    /// admin server, and logs "running". `step` then processes; `finish` stops.
    /// - Throws: what `run` throws for a failed start (after shutting down what started).
    package func start() throws {
        // Before any topic is created: a topology built in code (not
        // loaded from a file) gets the same check, with the group's
        // internal topics this time.
        do {
            try topology.checkDistinctTopics(group: options.group)
        } catch {
            throw ProcessorError.configuration(error.description)
        }
        try prepareTopics()
        do {
            try connect()
            try registerInGroup()
            // After the live members' check: a member running other settings
            // is named as such; this one is about the checkpoints' settings.
            try checkStateSettings()
            try startObservability()
            // A bounded run counts `publish_interval` from its start (`publishIntervalPassed`).
            if options.stopAtEnd { publishedVectorsSinceMs = clockNowMs() }
            logger.info("running", metadata: [
                "group": "\(options.group)", "topics": "\(topics)", "repartition_partitions": "\(repartitionPartitions)",
                "bounded": "\(options.stopAtEnd)",
            ])
        } catch {
            stopOnFatalError(error)
            throw error
        }
    }

    /// A fatal error stops the run. The records processed since the last
    /// checkpoint may have effects that never reached Redis or the broker:
    /// keep the last checkpoint and commit (the next run replays them), and shut down.
    package func stopOnFatalError(_ error: Error) {
        blockCommits("stopped on a fatal error: \(error)")
        stats.failed("stopping on a fatal error: \(error)")
        stopFlag.set()
        shutdown()
    }

    /// The last part of `run`: flushes, checkpoints, commits and leaves the
    /// group (`shutdown`), then reports what a bounded run left undone.
    /// - Throws: see `run`.
    package func finish() throws {
        shutdown()
        if !storeLostAtStop.isEmpty {
            let tasks = Set(storeLostAtStop).map(\.description).sorted()
            throw ProcessorError.checkpoint("the checkpoint store (Redis) lost the state of \(tasks) (restarted without persistence, or flushed) and the stop came before they were rebuilt: their features in Redis are incomplete until the next run of this group, which finds the loss and rebuilds them by replaying their input; start it (a bounded run, --stop-at-end, finishes it)")
        }
        if storeRestartedAtStop {
            throw ProcessorError.checkpoint("Redis restarted while the run stopped, after its final checkpoint: the checkpoints survived, the final vectors written after them may not have; run the bounded run of this group again to write them")
        }
        if let missing = finalRefreshMissing {
            throw ProcessorError.embeddings("bounded run finished, but the final embedding refresh lacked the final rows of item partitions \(missing) (their owners stopped before the end); run the bounded run of this group again to repair the vectors")
        }
        if let missing = finalPublicationMissing {
            throw ProcessorError.embeddings("bounded run finished, but the final vectors of \(missing) were not written (their owner stopped after the final refresh began); run the bounded run of this group again to write them")
        }
        if stoppedWithUnacknowledgedOutput, let reason = commitsBlocked {
            throw ProcessorError.kafka(reason)
        }
        if let reason = commitsBlocked {
            throw ProcessorError.redis("\(reason); nothing was checkpointed or committed past the unwritten effects, the next run replays them")
        }
        if options.stopAtEnd && stillRefusedKeys > 0 {
            throw ProcessorError.redis("bounded run finished, but Redis still refuses \(stillRefusedKeys) key(s) (\(rejectedKeyCount) rejected in this run, logged with their keys, counted in freshet_redis_rejected_keys_total); everything else was written and committed. The checkpoints record the refused users and items: once the foreign keys are removed (docs/OPERATIONS.md, \"Redis faults\"), the next run of this group writes them in full, with nothing to replay")
        }
        if options.stopAtEnd && !checkpointer.uncheckpointedTasks.isEmpty {
            throw ProcessorError.checkpoint("bounded run finished, but the checkpoints of \(checkpointer.uncheckpointedTasks.sorted { $0.description < $1.description }) did not land; their offsets were not committed")
        }
    }

    /// What a crash leaves behind (tests): the Redis writer finishes what it
    /// was given and stops, and the clients are dropped, without a flush, a
    /// checkpoint, an offset commit or leaving the group.
    package func abandon() {
        stopFlag.set()
        stopBackgroundThreads()
        output = nil
        producer = nil
        consumer = nil
    }

    /// Stops every later checkpoint and offset commit of this run (see `commitsBlocked`).
    func blockCommits(_ reason: String) { checkpointer.block(reason) }

    /// Acts on what the writer saw: logs and counts rejected keys, drops tasks
    /// a newer owner fenced, rebuilds tasks the checkpoint store lost, and
    /// blocks commits once the writer abandoned writes.
    /// - Returns: tasks whose offsets must not be committed now (their
    ///   checkpoint did not land, or they are being rebuilt).
    @discardableResult
    func handleWriterReport() -> Set<TaskId> {
        let report = writer.takeReport()
        var excluded = report.failedCheckpoints
        for failure in report.failures {
            logger.error("redis write failed: \(failure)")
        }
        for (task, checkpoint, rejected) in report.rejectedKeys {
            // Refused scores are lost: the item tasks write their top K again
            // at the next flush, and again after each refusal, so the set is
            // right once the key is fixed (without waiting for new positives).
            if rejected.key == keys.trending {
                trendingRewriteDue = true
            } else if !checkpoint, let entity = RefusedEntity.named(by: rejected.keyBytes, keys: keys, feast: renderer.feast),
                      checkpointer.refused[task, default: []].count < Self.refusedEntitiesPerTask {
                // Written in full at the task's checkpoints until Redis takes it.
                checkpointer.refused[task, default: []].insert(entity)
            } else if !checkpoint, refusedForGood.count < Self.refusedEntitiesPerTask {
                refusedForGood.insert(rejected.key)
            }
            // A bad key is refused again at every flush that renders it: log and
            // count each key once per run (the set is capped; past the cap, every refusal).
            guard !rejectedKeys.contains(rejected.key) else { continue }
            if rejectedKeys.count < 10_000 { rejectedKeys.insert(rejected.key) }
            rejectedKeyCount += 1
            stats.metrics.redisRejectedKeys(reason: rejected.reason).increment()
            logger.error("redis rejected a key; the other keys of the batch were written", metadata: [
                "task": "\(task)", "key": "\(rejected.key)", "reason": "\(rejected.reason)",
                "checkpoint": "\(checkpoint)", "error": "\(rejected.message)",
            ])
        }
        // One rebuild pass: tasks the store lost share one read of the dead-letter topic.
        withRebuildPass {
            for (task, epoch, current) in report.fencedTasks {
                let refusal = FencedWriteReply.epochRefusal(ours: epoch, current: current)
                if refusal == .fencedByNewerOwner { stats.fencedWrites.increment() }
                // A refusal reported late, after this instance took the task back
                // under a newer epoch, is about the old ownership: keep the task.
                guard taskManager.epochs[task] == epoch else { continue }
                excluded.insert(task)
                switch refusal {
                case .fencedByNewerOwner:
                    logger.warning("task fenced: another instance owns it now; dropping it here",
                                   metadata: ["task": "\(task)", "epoch": "\(epoch)", "current_epoch": "\(current.map(String.init) ?? "missing")"])
                    dropTask(task)
                case .storeLost:
                    checkpointStoreLost(task, evidence: current == nil ? .epochMissing : .epochRolledBack,
                                        detail: "a write at epoch \(epoch) found the epoch key \(current.map { "at \($0)" } ?? "missing")")
                }
            }
        }
        if let reason = writer.abandonedReason {
            blockCommits(reason)
            // Writes failed for good (not because we are stopping): running on
            // without a sink would only widen the replay. Stop with an error.
            if !stopFlag.isSet {
                fatalError = writer.abandonedError.map { ProcessorError.redisFailure($0, context: "writes abandoned") }
                    ?? ProcessorError.redis("writes abandoned: \(reason)")
                stopFlag.set()
            }
        }
        checkpointer.uncheckpointedTasks.formUnion(report.failedCheckpoints)
        return excluded
    }

    /// Forgets a task, its metric series (`TaskManager.drop`) and the
    /// engine's bookkeeping about it.
    func dropTask(_ task: TaskId) {
        alignmentDropped(task)
        rebuildingTasks[task] = nil
        deadLetterFloorWritten[task] = nil
        if let index = taskManager.inputs.subscriptionIndex(of: task.stage) {
            consumedCounters[Int64(index) << 32 | Int64(task.partition)] = nil
        }
        taskManager.drop(task)
    }

    // MARK: - Shutdown

    /// Stops the run in this order (docs/ARCHITECTURE.md, "Shutdown order"):
    /// flush, checkpoint and commit; the refresher's thread (joined); leave
    /// the group (the revoke callback still writes through the writer); the
    /// writer's thread (drained, joined, its connection closed); the producer
    /// flushed; the progress and admin threads (joined); then the librdkafka
    /// handles destroyed and the control connection closed, on this thread,
    /// once no other thread of the processor is left to use them. Whoever
    /// releases the processor afterwards frees Swift memory only.
    /// Idempotent; safe after a failed start (stops whatever was started).
    func shutdown() {
        guard consumer != nil else {
            stopBackgroundThreads()
            return
        }
        let now = clockNowMs()
        var timeline = ShutdownTimeline()
        let lossesBeforeStop = storeLostTasks.count
        // What the tasks counted since the last report (at most a second ago).
        updateGauges(nowMs: now, force: true)
        // A bounded run publishes every touched embedding row before it exits:
        // at once, or through the final refresh's republication when one follows.
        // (Not after a signal that stopped the run, even one that came while
        // it waited for the group's final markers: the next run refreshes.)
        let finalRefreshFollows = options.stopAtEnd && boundedRunEnded && boundedRunComplete && refresher != nil
        forceEmbeddingSync = !finalRefreshFollows
        embeddingSyncHeld = finalRefreshFollows
        if commitsBlocked == nil {
            flushFeatures(nowMs: now)
            timeline.mark("flush")
            if finalRefreshFollows {
                startFinalEmbeddingRefreshIfEveryRowIsLocal()
            } else {
                finishUserRepublication()
                timeline.mark("republication")
            }
            if topology.checkpointIntervalMs > 0 {
                checkpointAndCommit(tasks: allTaskIds, nowMs: now)
            } else {
                commitOnly(nowMs: now)
            }
            timeline.mark("checkpoint")
            // The broker did not acknowledge what the tasks produced within
            // the flush's timeout (frozen or unreachable): the final
            // checkpoint cannot be taken, and leaving the group would try it
            // again in the revoke callback, another full timeout (a breaker's
            // stop with the broker frozen took 63 s). Stop now; the next
            // owner restores from the last checkpoint and replays the rest.
            if let unacknowledged = checkpointer.unacknowledgedOutput {
                stoppedWithUnacknowledgedOutput = true
                blockCommits("stopping while the broker does not acknowledge the produced records (\(unacknowledged)): "
                             + "the final checkpoint was skipped; the next owner replays from the last one")
            }
        }
        // A bounded run ends with a refresh over every item's final rows (all
        // instances'), published before exit.
        if finalRefreshFollows {
            finalEmbeddingRefresh()
            timeline.mark("final_refresh")
            embeddingSyncHeld = false
            forceEmbeddingSync = true
            switchVectorsNow = true
            flushFeatures(nowMs: clockNowMs())
            finishUserRepublication()
            timeline.mark("republication")
        }
        // A loss found by the final checkpoint (Redis restarted empty or was
        // flushed since the last one) re-created those tasks empty: their
        // features in Redis stay incomplete until a run replays their input.
        // Saying so is all the stop can do (it used to exit 0 regardless).
        // So do tasks still replaying their input after a loss found before
        // the stop (a SIGTERM soon after Redis restarted empty): the stop
        // interrupts their rebuild (a breaker's rerun: exit 0, Redis empty).
        checkRebuildProgress()
        let rebuildingAtStop = rebuildingTasks.keys.sorted { $0.description < $1.description }
        embeddingSummary = makeEmbeddingSummary()
        if let embeddingSummary { logger.info("embeddings: \(embeddingSummary)") }
        refresher?.stop()
        let finalVectorWriters = finalRefreshFollows ? ownFinalVectorWriters : []
        let epochsAtStop = taskManager.epochs
        let withInputAtStop = Set(epochsAtStop.keys.filter { taskManager[$0]?.nextOffset != nil })
        let runIdAtStop = redisRunId
        // Leaving the group runs the revoke callback: it finds the tasks already
        // checkpointed (or commits blocked) and only drops them; its checkpoint
        // may still find the store lost (and rebuild, then drop, those tasks).
        do { try consumer.close() } catch { logger.warning("leaving the group: \(error)") }
        timeline.mark("leave_group")
        writer.stop()
        timeline.mark("redis_drain")
        // Every write of this run is acknowledged: losses found since the stop
        // began (also while leaving the group), tasks still rebuilding, and a
        // store lost after the last check (a Redis restarted empty while the
        // run stopped: an exit 0 left every feature gone, a breaker's finding).
        // (The checkpoints as of now: the revoke callback checkpoints again.)
        let writtenAtStop = StoreAtStop(epochs: epochsAtStop, withInput: withInputAtStop, checkpoints: checkpointer.writtenMs,
                                        runId: runIdAtStop, writesAfterCheckpoint: finalRefreshFollows)
        storeLostAtStop = Array(storeLostTasks[lossesBeforeStop...]) + rebuildingAtStop
            + (commitsBlocked == nil ? storeLostSince(writtenAtStop) : [])
        // Dead letters and repartition records of the last batch; after a
        // flush that already timed out, a short last chance (nothing past the
        // last checkpoint is committed: they are produced again).
        _ = try? flushProducer(timeoutMs: stoppedWithUnacknowledgedOutput ? 1_000 : 10_000)
        timeline.mark("producer_flush")
        // (After the flush: the wait for the other members' reports can be long.)
        if finalRefreshFollows && finalRefreshMissing == nil && commitsBlocked == nil && writer.refusedWriteCount == 0 {
            confirmFinalPublication(mine: finalVectorWriters)
            timeline.mark("confirm_publication")
        }
        stopBackgroundThreads()
        timeline.mark("stop_threads")
        leaveGroupRegistry()
        logger.info("shutdown", metadata: timeline.metadata)
        // Destroy the Kafka clients now, not when the processor is released:
        // their threads would keep reconnecting (and logging) while whoever
        // ran us stops the broker (the embedded default does, right after),
        // and a release on another thread could race the process's exit.
        output = nil
        producer = nil
        consumer = nil
        control?.close()
        logger.info("stopped", metadata: ["records": "\(stats.recordsConsumed.value)"])
    }

    /// Joins every thread the processor started (each `stop` is idempotent and
    /// waits for its thread): the refresher, the Redis writer (closing its
    /// connection), the progress line and the admin server.
    func stopBackgroundThreads() {
        refresher?.stop()
        writer?.stop()
        progress?.stop()
        admin?.stop()
    }

    @Sendable package static func wallClockMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The injected clock's now, ms (`wallClockMs` unless a test injected one).
    func clockNowMs() -> Int64 { clock() }
}

/// Errors that stop the processor.
///
/// A failure of Kafka or Redis keeps its typed error (`kafkaFailure`,
/// `redisFailure`), so a caller can still ask whether it was fatal or
/// retriable (`KafkaError.isFatal`, `RedisError.isRetriable`); the string
/// cases describe conditions the engine itself found.
package enum ProcessorError: Error, CustomStringConvertible {
    case configuration(String)
    case kafka(String)
    case redis(String)
    case checkpoint(String)
    case embeddings(String)
    /// A Kafka client error that stopped the run, with what the engine was doing.
    case kafkaFailure(KafkaError, context: String)
    /// A Redis error that stopped the run (e.g. the writer gave up), with what the engine was doing.
    case redisFailure(RedisError, context: String)

    package var description: String {
        switch self {
        case .configuration(let m): return "configuration: \(m)"
        case .kafka(let m): return "kafka: \(m)"
        case .redis(let m): return "redis: \(m)"
        case .checkpoint(let m): return "checkpoint: \(m)"
        case .embeddings(let m): return "embeddings: \(m)"
        case .kafkaFailure(let error, let context): return "kafka: \(context): \(error)"
        case .redisFailure(let error, let context):
            return "redis: \(context): \(RedisWriter.describe(error)): \(error.message)"
        }
    }
}

/// A flag set from a signal handler and read by the processing loop.
package final class StopFlag: @unchecked Sendable {
    // Guarded by `lock`; read once per polled batch, so a lock is cheap enough.
    private let lock = NSLock()
    private var value = false
    package init() {}
    package func set() { lock.lock(); value = true; lock.unlock() }
    package var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
