/// Identifies a task: a stage and the one input partition it owns.
///
/// Tasks are Freshet's unit of state ownership, as in Kafka Streams: exactly
/// one instance of the consumer group owns a task at a time, and its keyed
/// state, checkpoint and fencing epoch are all named by this id.
public struct TaskId: Hashable, Sendable, CustomStringConvertible {
    public enum Stage: String, Sendable {
        /// Reads `interactions`: decoding, dead letters, user features (when the
        /// input is keyed by user), routing to the repartition topics.
        case interactions
        /// Reads `impressions`: decoding, dead letters, routing by item.
        case impressions
        /// Reads `<group>-items-repartition`: windowed item counts and trending.
        case items
        /// Reads `<group>-users-repartition`: user features for input not keyed by user.
        case users
    }

    public var stage: Stage
    public var partition: Int32

    public init(stage: Stage, partition: Int32) {
        self.stage = stage
        self.partition = partition
    }

    /// Stable text form used in Redis key names, metrics and logs: `items-3`.
    public var description: String { "\(stage.rawValue)-\(partition)" }
}
