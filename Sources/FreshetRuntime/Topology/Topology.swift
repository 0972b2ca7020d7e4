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
        /// Earliest accepted event time, epoch ms (default 2000-01-01T00:00:00Z,
        /// which catches producers sending seconds); lower it for a backfill.
        public var minTimestampMs: Int64 = 946_684_800_000
    }

    /// What Freshet produces to Kafka (repartition bundles, dead letters, examples).
    public struct Output: Sendable, Equatable {
        /// The largest message Freshet produces (key + value + headers), also
        /// the producer's `message.max.bytes`. Bundles split below it; a dead
        /// letter above it is truncated (with a reference to the original).
        public var maxMessageBytes = 1_000_000
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
        /// How many of the user's recent positive items (the head of
        /// `recent_items_50`, so at most 50) a positive co-occurs with.
        public var history = 10
        /// Largest gap, in positives counted into this instance's rows, between two
        /// spectral refreshes (the first comes after 2,000; gaps double up to this).
        public var refreshEvery = 1_000_000
        /// Subspace iterations of the final refresh of a bounded run (seeded start).
        public var finalIterations = 12
        public var joinWindowMs: Int64 = 600_000
        public var syncIntervalMs: Int64 = 10_000
        /// A new refresh replaces the published vectors (every item and every
        /// user rewritten, a new `embedding_version`) at most this often;
        /// between switches, syncs write fold-ins and touched users against the
        /// published refresh. The first refresh and a bounded run's final one
        /// are published at once.
        public var publishIntervalMs: Int64 = 60_000
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

    /// Rows in the layout of Feast's Redis online store (FEAST_LAYOUT.md), so
    /// that an unmodified `get_online_features` reads Freshet's features.
    public struct Feast: Sendable, Equatable {
        /// One Feast feature view fed by Freshet.
        public struct View: Sendable, Equatable {
            /// Feature view name (hashed into field names and in `_ts:<name>`).
            public var name: String
            /// The entity's join key (a String entity).
            public var entity: String
            /// Freshet feature -> Feast feature name. Freshet features not
            /// listed are not written to Feast.
            public var features: [String: String]
        }

        /// Freshet features a user view can carry.
        public static let userFeatures = ["recent_items_50", "interaction_count", "embedding"]
        /// Freshet features an item view can carry.
        public static let itemFeatures = ["popularity_7d", "impressions_7d", "embedding"]

        public var enabled = false
        /// Must equal the Feast repository's `project` (a suffix of every key).
        public var project = "recsys"
        /// Whether Freshet's own `user:`/`item:` hashes are still written.
        public var freshetHashes = true
        public var user = View(name: "user_features", entity: "user_id",
                               features: Dictionary(uniqueKeysWithValues: userFeatures.map { ($0, $0) }))
        public var item = View(name: "item_features", entity: "item_id",
                               features: Dictionary(uniqueKeysWithValues: itemFeatures.map { ($0, $0) }))
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
    public var output = Output()
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
    public var feast = Feast()
    /// Raw librdkafka properties passed to every Kafka client.
    public var kafka: [String: String] = [:]

    public init() {}

    /// Kafka Streams-style internal topic names, scoped by consumer group so
    /// that two applications never read each other's repartitioned records.
    public static func itemRepartitionTopic(group: String) -> String { "\(group)-items-repartition" }
    public static func userRepartitionTopic(group: String) -> String { "\(group)-users-repartition" }
}
