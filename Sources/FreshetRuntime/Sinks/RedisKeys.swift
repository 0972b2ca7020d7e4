/// The Redis key layout: the contract readers code against (see README).
public struct RedisKeys: Sendable, Equatable {
    public let prefix: String
    public let group: String

    public init(prefix: String, group: String) {
        self.prefix = prefix
        self.group = group
    }

    public func user(_ id: String) -> String { "\(prefix)user:\(id)" }
    public func item(_ id: String) -> String { "\(prefix)item:\(id)" }
    public var trending: String { "\(prefix)trending" }
    public var trendingMeta: String { "\(prefix)trending:meta" }

    // Internal keys, scoped by consumer group like the repartition topics.
    public func epoch(_ task: TaskId) -> String { "\(prefix)freshet:\(group):epoch:\(task)" }
    public func checkpointState(_ task: TaskId) -> String { "\(prefix)freshet:\(group):ckpt:\(task):state" }
    public func checkpointMeta(_ task: TaskId) -> String { "\(prefix)freshet:\(group):ckpt:\(task):meta" }
    /// Embedding rows of the task, field = id (kept apart from feature entries so ids never collide).
    public func checkpointEmbeddings(_ task: TaskId) -> String { "\(prefix)freshet:\(group):ckpt:\(task):emb" }
    /// Item partitions whose final co-occurrence rows are checkpointed (end of a bounded run).
    public var embeddingFinal: String { "\(prefix)freshet:\(group):emb:final" }
}
