import FreshetKafka

/// The topics the processor reads, each resolved once at start to the stage
/// whose tasks read it: the engine routes records, names partitions and
/// drops metric series through this table, never by topic position or name
/// comparisons.
struct InputTopics: Sendable {
    struct Input: Sendable {
        let name: String
        let stage: TaskId.Stage
        /// The topic's position in the consumer's subscription
        /// (`ConsumedRecord.topicIndex`); nil when not subscribed.
        let subscriptionIndex: Int?
    }

    /// The subscribed topics, in subscription order (the consumer's topic indices).
    let subscribed: [Input]
    private let byStage: [TaskId.Stage: Input]
    private let byName: [String: Input]

    /// - Parameter stages: every stage's topic; `subscribe` in subscription order.
    init(topics: [(stage: TaskId.Stage, name: String)], subscribe: [TaskId.Stage]) {
        var byStage: [TaskId.Stage: Input] = [:]
        for (stage, name) in topics {
            byStage[stage] = Input(name: name, stage: stage, subscriptionIndex: subscribe.firstIndex(of: stage))
        }
        self.byStage = byStage
        self.subscribed = subscribe.compactMap { byStage[$0] }
        var byName: [String: Input] = [:]
        for input in byStage.values { byName[input.name] = input }
        self.byName = byName
    }

    init() { self.init(topics: [], subscribe: []) }

    /// Topic names to subscribe to, in order.
    var names: [String] { subscribed.map(\.name) }

    /// The task that owns a partition of an input topic; nil for a topic not read here.
    func taskId(for tp: TopicPartition) -> TaskId? {
        byName[tp.topic].map { TaskId(stage: $0.stage, partition: tp.partition) }
    }

    /// The input partition a task owns.
    func topicPartition(of id: TaskId) -> TopicPartition {
        TopicPartition(topic: byStage[id.stage]?.name ?? "", partition: id.partition)
    }

    /// The subscription index of the task's topic (metric caches key on it).
    func subscriptionIndex(of stage: TaskId.Stage) -> Int? { byStage[stage]?.subscriptionIndex }
}
