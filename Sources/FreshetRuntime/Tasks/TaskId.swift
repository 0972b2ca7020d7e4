/// Identifies a task: a stage and the one input partition it owns.
///
/// Tasks are Freshet's unit of state ownership, as in Kafka Streams: exactly
/// one instance of the consumer group owns a task at a time, and its keyed
/// state, checkpoint and fencing epoch are all named by this id.
package struct TaskId: Hashable, Sendable, CustomStringConvertible {
    package enum Stage: String, Sendable, CaseIterable {
        /// Reads `interactions`: decoding, dead letters, user features (when the
        /// input is keyed by user), routing to the repartition topics.
        case interactions
        /// Reads `impressions`: decoding, dead letters, routing by item.
        case impressions
        /// Reads `<group>-counts-repartition` (examples on, input keyed by
        /// user): each user's positives as (event time, count) and
        /// interactions from the interactions tasks, impressions with their
        /// items' features from the item tasks; holds them until the
        /// watermark passes them, then joins them in event-time order into
        /// the examples, impressions stamped with the user's `interaction_count` as of their time.
        case counts
        /// Reads `<group>-items-repartition`: windowed item counts and trending.
        case items
        /// Reads `<group>-users-repartition`: user features for input not keyed by user.
        case users
    }

    package var stage: Stage
    package var partition: Int32

    package init(stage: Stage, partition: Int32) {
        self.stage = stage
        self.partition = partition
    }

    /// Stable text form used in Redis key names, metrics and logs: `items-3`.
    package var description: String { "\(stage.rawValue)-\(partition)" }
}

extension TaskId.Stage {
    /// Whether the stage reads a source topic (and so decodes, dead-letters and routes).
    package var readsSourceTopic: Bool { sourceCode != nil }

    /// The source topic's code in repartitioned records' origins, watermark
    /// markers and checkpoints' source progress (`DuplicateFilter.Source.topic`):
    /// part of the wire and checkpoint format, so never renumbered. Nil for
    /// repartition-fed stages.
    package var sourceCode: UInt8? {
        switch self {
        case .interactions: return 0
        case .impressions: return 1
        case .counts, .items, .users: return nil
        }
    }

    /// The code of a stage whose tasks send records to a repartition-fed
    /// stage, in those records' origins, watermark markers and the receiving
    /// tasks' checkpointed source progress: the source topics' codes, 2 for
    /// the counts stage (what it released to the items stage before the join
    /// moved there; no longer sent) and 3 for the items stage (its markers to
    /// the counts stage). Wire and checkpoint format, never renumbered.
    package var originCode: UInt8? {
        switch self {
        case .counts: return 2
        case .items: return 3
        default: return sourceCode
        }
    }
}

extension TaskId.Stage {
    /// The source stage whose topic has the code `code` (`sourceCode`); nil
    /// for any other code (the counts stage's included).
    package init?(sourceCode code: UInt8) {
        guard let stage = Self.allCases.first(where: { $0.sourceCode == code }) else { return nil }
        self = stage
    }
}

extension TaskId {
    /// This task's partition as the tasks it feeds name it (origins, markers,
    /// source progress); nil for a stage that feeds none.
    package var originSource: DuplicateFilter.Source? {
        stage.originCode.map { DuplicateFilter.Source(topic: $0, partition: partition) }
    }
}

extension DuplicateFilter.Source {
    /// Every partition of `stage` (a stage with an `originCode`), as the
    /// repartition-fed tasks name their inputs.
    package static func partitions(of stage: TaskId.Stage, count: Int32) -> [DuplicateFilter.Source] {
        guard let code = stage.originCode else { return [] }
        return (0..<count).map { DuplicateFilter.Source(topic: code, partition: $0) }
    }
}
