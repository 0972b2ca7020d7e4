/// A Freshet topology: which topics feed the features, the event-time rules,
/// window and trending parameters, and how results reach Redis.
///
/// Loaded from a YAML file (`topologies/recsys.yaml` is the default) by
/// ``TopologyLoader``; every field has a documented default so an empty file
/// is a valid topology. Durations are milliseconds here.
public struct Topology: Sendable, Equatable {
    public struct Sources: Sendable, Equatable {
        /// Topic of interaction events.
        public var interactions = "interactions"
        /// Topic of impression events.
        public var impressions = "impressions"
        /// Whether producers key interactions by `user_id`. When false, user
        /// features are computed after a repartition by user.
        public var keyedByUser = true
        /// Partitions to create when a source topic does not exist yet.
        public var partitions = 8
    }

    public struct EventTime: Sendable, Equatable {
        public var outOfOrdernessMs: Int64 = 5_000
        public var idleTimeoutMs: Int64 = 30_000
        public var maxFutureSkewMs: Int64 = 86_400_000
    }

    public struct Windows: Sendable, Equatable {
        public var paneMs: Int64 = 3_600_000
        public var lengthMs: Int64 = 7 * 86_400_000
        public var panesPerWindow: Int { Int(lengthMs / paneMs) }
    }

    public struct Trending: Sendable, Equatable {
        public var halfLifeMs: Int64 = 3_600_000
        public var topK = 500
    }

    public struct Redis: Sendable, Equatable {
        public var keyPrefix = ""
        public var flushIntervalMs: Int64 = 5
        public var flushMaxKeys = 4096
    }

    /// Online embeddings, Monolith-style (docs/EMBEDDINGS.md).
    public struct Embeddings: Sendable, Equatable {
        public var enabled = true
        /// Vector dimension; names the Redis field `embedding_<dim>d`.
        public var dimension = 64
        /// Accepted for older topology files; the co-occurrence model has no loss.
        public var loss = "bpr"
        /// Accepted for older topology files; the co-occurrence model samples no negatives.
        public var negatives = 4
        /// How many of the user's recent positive items a positive co-occurs with.
        public var history = 10
        /// Largest gap, in positives counted into this instance's rows, between two
        /// spectral refreshes (the first comes after 2,000; gaps double up to this).
        public var refreshEvery = 1_000_000
        /// Subspace iterations of the final refresh of a bounded run (seeded start).
        public var finalIterations = 12
        public var joinWindowMs: Int64 = 600_000
        public var syncIntervalMs: Int64 = 10_000
        public var userAdmitAfter = 1
        public var itemAdmitAfter = 1
        /// Rows with no positive for this much event time are evicted (and their Redis fields
        /// deleted). A year, so a slow catalogue's long tail stays retrievable.
        public var ttlMs: Int64 = 365 * 86_400_000
        public var examplesTopic = "freshet-examples"
        /// Join impressions with interactions and write `examplesTopic` (the
        /// vectors do not need it; it is the costly half of `embeddings`).
        public var examples = true
        public var seed: UInt64 = 42
        public var fieldName: String { "embedding_\(dimension)d" }
    }

    public struct Admin: Sendable, Equatable {
        public var host = "127.0.0.1"
        /// 0 picks a free port; -1 disables the admin server.
        public var port = 9464
        public var allowNonLoopback = false
    }

    public var sources = Sources()
    /// Partitions of the repartition topics; 0 means "same as the sources".
    public var repartitionPartitions = 0
    public var deadLetterTopic = "freshet-dlq"
    public var eventTime = EventTime()
    public var windows = Windows()
    public var trending = Trending()
    public var redis = Redis()
    /// Interval between checkpoints; 0 disables checkpoints (then offsets are
    /// committed after each Redis flush: at-least-once).
    public var checkpointIntervalMs: Int64 = 5_000
    public var progressIntervalMs: Int64 = 5_000
    public var admin = Admin()
    public var embeddings = Embeddings()
    /// Raw librdkafka properties passed to every Kafka client.
    public var kafka: [String: String] = [:]

    public init() {}

    /// Kafka Streams-style internal topic names, scoped by consumer group so
    /// that two applications never read each other's repartitioned records.
    public static func itemRepartitionTopic(group: String) -> String { "\(group)-items-repartition" }
    public static func userRepartitionTopic(group: String) -> String { "\(group)-users-repartition" }
}
