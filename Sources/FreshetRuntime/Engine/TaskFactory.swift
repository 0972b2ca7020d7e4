import FreshetCore
import FreshetEmbeddings
import FreshetFeatures

/// Creates an empty task for an assigned partition, configured from the
/// topology: the one place that knows each kind's constructor. Everything
/// after creation goes through `StreamTask`.
struct TaskFactory {
    let topology: Topology
    /// Bounded runs turn idleness off (see `make`).
    let stopAtEnd: Bool
    let decoder: EventDecoder
    let panes: PaneSpec
    let trending: TrendingDecay
    let interactionPartitions: Int32
    let impressionPartitions: Int32
    /// Partitions of the repartition topics (the counts stage's among them).
    let repartitionPartitions: Int32
    /// Embedding sides (nil when embeddings are off).
    let makeUserEmbeddingSide: () -> UserEmbeddingSide?
    let makeItemEmbeddingSide: () -> ItemEmbeddingSide?

    /// - Parameters:
    ///   - topic: the input topic's name (dead letters carry it).
    ///   - nowMs: wall clock, ms (idleness of item tasks' sources starts now).
    func make(_ id: TaskId, topic: String, nowMs: Int64) -> any StreamTask {
        switch id.stage {
        case .interactions, .impressions:
            let task = SourceTask(id: id, topic: topic, decoder: decoder,
                                  outOfOrdernessMs: topology.eventTime.outOfOrdernessMs,
                                  keepsUserFeatures: topology.sources.keyedByUser)
            task.routesThroughCounts = topology.routesExamplesThroughCounts
            task.routesSkipsToItems = topology.itemStageTakesSkips
            // Histories are the head of recent_items_50: restored with the user features.
            if task.users != nil {
                task.userEmbeddings = makeUserEmbeddingSide()
                if interactionPartitions > 1, id.partition < interactionPartitions {
                    task.keyPartitioning = UserKeyPartitioning(partition: id.partition, partitionCount: interactionPartitions)
                }
            }
            return task
        case .items:
            // Bounded runs are judged on their own final markers; idleness would
            // make the final watermark depend on timing, so it is off there.
            let idle: Int64? = stopAtEnd ? nil : topology.eventTime.idleTimeoutMs
            let sources = DuplicateFilter.Source.partitions(of: .interactions, count: interactionPartitions)
                + DuplicateFilter.Source.partitions(of: .impressions, count: impressionPartitions)
            let task = ItemTask(id: id, panes: panes, trending: trending, idleTimeoutMs: idle,
                                sources: Set(sources), nowMs: nowMs)
            task.embeddings = makeItemEmbeddingSide()
            // With the counts stage, it joins the examples: this task sends it the items' features.
            if topology.routesExamplesThroughCounts { task.embeddings?.sendFeaturesToCounts(fromPartition: id.partition) }
            return task
        case .counts:
            // Same event-time rules as the items stage (idleness off in bounded runs).
            let idle: Int64? = stopAtEnd ? nil : topology.eventTime.idleTimeoutMs
            // Interactions from their source tasks, impressions (with their
            // items' features) from the item tasks.
            let sources = DuplicateFilter.Source.partitions(of: .interactions, count: interactionPartitions)
                + DuplicateFilter.Source.partitions(of: .items, count: repartitionPartitions)
            // Positives are kept long enough for an impression read up to a
            // join window and the join's late TTL after its time (later: no count).
            return CountTask(id: id, sources: Set(sources), idleTimeoutMs: idle,
                             retentionMs: topology.embeddings.joinWindowMs + ImpressionJoiner.defaultLateTTLMs,
                             joinWindowMs: topology.embeddings.joinWindowMs, nowMs: nowMs)
        case .users:
            // Only interactions are re-keyed by user.
            let sources = DuplicateFilter.Source.partitions(of: .interactions, count: interactionPartitions)
            return UserTask(id: id, sources: Set(sources))
        }
    }
}
