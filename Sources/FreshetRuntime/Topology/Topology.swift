/// A Freshet topology: which topics feed the features, the event-time rules,
/// window and trending parameters, and how results reach Redis.
///
/// Loaded from a YAML file (`topologies/recsys.yaml` is the default) by
/// ``TopologyLoader``; every field has a documented default so an empty file
/// is a valid topology. Durations are milliseconds here.
package struct Topology: Sendable, Equatable {
    package struct Sources: Sendable, Equatable {
        /// Topic of interaction events.
        package var interactions = "interactions"
        /// Topic of impression events.
        package var impressions = "impressions"
        /// Whether producers key interactions by `user_id`. When false, user
        /// features are computed after a repartition by user.
        package var keyedByUser = true
        /// Partitions to create when a source topic does not exist yet.
        package var partitions = 8
    }

    package struct EventTime: Sendable, Equatable {
        package var outOfOrdernessMs: Int64 = 5_000
        package var idleTimeoutMs: Int64 = 30_000
        /// Watermark alignment (`event_time.max_drift`): a source partition
        /// whose watermark runs more than this ahead of the group's slowest is
        /// paused until the slowest is within half of it. nil: the join window
        /// (`embeddings.join_window`) when the examples topic is on, else off;
        /// 0: off. See `alignmentMaxDriftMs`.
        package var maxDriftMs: Int64?
        package var maxFutureSkewMs: Int64 = 86_400_000
        /// Earliest accepted event time, epoch ms (default 2000-01-01T00:00:00Z,
        /// which catches producers sending seconds); lower it for a backfill.
        package var minTimestampMs: Int64 = 946_684_800_000
    }

    /// What Freshet produces to Kafka (repartition bundles, dead letters, examples).
    package struct Output: Sendable, Equatable {
        /// The largest message Freshet produces (key + value + headers), also
        /// the producer's `message.max.bytes`. Bundles split below it; a dead
        /// letter above it is truncated (with a reference to the original).
        package var maxMessageBytes = 1_000_000
    }

    package struct Windows: Sendable, Equatable {
        package var paneMs: Int64 = 3_600_000
        package var lengthMs: Int64 = 7 * 86_400_000
        package var panesPerWindow: Int { Int(lengthMs / paneMs) }
    }

    package struct Trending: Sendable, Equatable {
        package var halfLifeMs: Int64 = 3_600_000
        package var topK = 500
    }

    package struct Redis: Sendable, Equatable {
        package var keyPrefix = ""
        package var flushIntervalMs: Int64 = 5
        package var flushMaxKeys = 4096
        /// Run on a Redis that may evict any key under `maxmemory` (an
        /// `allkeys-*` policy). Off by default: such a Redis can drop
        /// features and checkpoints without an error (`StreamProcessor.checkEviction`).
        package var allowEviction = false
    }

    /// Online embeddings, Monolith-style (docs/EMBEDDINGS.md).
    package struct Embeddings: Sendable, Equatable {
        package var enabled = true
        /// Vector dimension; names the Redis field `embedding_<dim>d`.
        package var dimension = 64
        /// Accepted for older topology files; the co-occurrence model has no loss.
        package var loss = "bpr"
        /// Accepted for older topology files; the co-occurrence model samples no negatives.
        package var negatives = 4
        /// How many of the user's recent positive items (the head of
        /// `recent_items_50`, so at most 50) a positive co-occurs with.
        package var history = 10
        /// Largest gap, in positives of the group (as the refresh leader estimates
        /// them from its own item partitions), between two spectral refreshes
        /// (the first comes after 2,000; gaps double up to this).
        package var refreshEvery = 1_000_000
        /// Subspace iterations of the final refresh of a bounded run (seeded start).
        package var finalIterations = Self.defaultFinalIterations
        package static let defaultFinalIterations = 12
        package var joinWindowMs: Int64 = 600_000
        package var syncIntervalMs: Int64 = 10_000
        /// A new refresh replaces the published vectors (every item and every
        /// user rewritten, a new `embedding_version`) at most this often;
        /// between switches, syncs write fold-ins and touched users against the
        /// published refresh. A live run publishes its first refresh at once;
        /// a bounded run counts the interval from its start, and one expected
        /// to end within the interval waits for its final refresh, which is
        /// published at once (`publishIntervalPassed`, `finalRefreshComesFirst`).
        package var publishIntervalMs: Int64 = 60_000
        /// How long a bounded run waits, at its end, for the other instances
        /// of its group to mark their item partitions final before its final
        /// refresh (`final_wait`); past it the run fails (exit 1), naming the
        /// partitions whose rows the refresh lacked.
        package var finalWaitMs: Int64 = 120_000
        package var userAdmitAfter = 1
        package var itemAdmitAfter = 1
        /// Rows with no positive for this much event time are evicted (and their Redis fields
        /// deleted). A year, so a slow catalogue's long tail stays retrievable.
        package var ttlMs: Int64 = 365 * 86_400_000
        package var examplesTopic = "freshet-examples"
        /// Join impressions with interactions and write `examplesTopic` (the
        /// vectors do not need it; it is the costly half of `embeddings`).
        package var examples = true
        package var seed: UInt64 = 42
        package var fieldName: String { "embedding_\(dimension)d" }
    }

    /// Rows in the layout of Feast's Redis online store (FEAST_LAYOUT.md), so
    /// that an unmodified `get_online_features` reads Freshet's features.
    package struct Feast: Sendable, Equatable {
        /// One Feast feature view fed by Freshet.
        package struct View: Sendable, Equatable {
            /// Feature view name (hashed into field names and in `_ts:<name>`).
            package var name: String
            /// The entity's join key (a String entity).
            package var entity: String
            /// Freshet feature -> Feast feature name. Freshet features not
            /// listed are not written to Feast.
            package var features: [String: String]
        }

        /// Freshet features a user view can carry.
        package static let userFeatures = ["recent_items_50", "interaction_count", "embedding"]
        /// Freshet features an item view can carry.
        package static let itemFeatures = ["popularity_7d", "impressions_7d", "embedding"]

        package var enabled = false
        /// Must equal the Feast repository's `project` (a suffix of every key).
        package var project = "recsys"
        /// Whether Freshet's own `user:`/`item:` hashes are still written.
        package var freshetHashes = true
        package var user = View(name: "user_features", entity: "user_id",
                               features: Dictionary(uniqueKeysWithValues: userFeatures.map { ($0, $0) }))
        package var item = View(name: "item_features", entity: "item_id",
                               features: Dictionary(uniqueKeysWithValues: itemFeatures.map { ($0, $0) }))
    }

    package struct Admin: Sendable, Equatable {
        package var host = "127.0.0.1"
        /// 0 picks a free port; -1 disables the admin server.
        package var port = 9464
        package var allowNonLoopback = false
    }

    package var sources = Sources()
    /// Partitions of the repartition topics; 0 means "same as the sources".
    package var repartitionPartitions = 0
    package var deadLetterTopic = "freshet-dlq"
    package var output = Output()
    package var eventTime = EventTime()

    /// The drift watermark alignment allows, event-time ms; nil when alignment is off.
    ///
    /// By default it is on only with the examples topic: the examples' join is
    /// the state that waits for the watermark (an impression is held until its
    /// window closes); the features' panes do not grow with it, and pausing
    /// costs the features-only path refetches (docs/OPERATIONS.md).
    package var alignmentMaxDriftMs: Int64? {
        let drift = eventTime.maxDriftMs ?? (embeddings.enabled && embeddings.examples ? embeddings.joinWindowMs : 0)
        return drift > 0 ? drift : nil
    }
    package var windows = Windows()
    package var trending = Trending()
    package var redis = Redis()
    /// Interval between checkpoints; 0 disables checkpoints (then offsets are
    /// committed after each Redis flush: at-least-once).
    package var checkpointIntervalMs: Int64 = 5_000
    package var progressIntervalMs: Int64 = 5_000
    package var admin = Admin()
    package var embeddings = Embeddings()
    package var feast = Feast()
    /// Raw librdkafka properties passed to every Kafka client.
    package var kafka: [String: String] = [:]

    package init() {}

    /// Kafka Streams-style internal topic names, scoped by consumer group so
    /// that two applications never read each other's repartitioned records.
    package static func itemRepartitionTopic(group: String) -> String { "\(group)-items-repartition" }
    package static func userRepartitionTopic(group: String) -> String { "\(group)-users-repartition" }
    /// The counts stage's input (user-keyed; see `routesExamplesThroughCounts`).
    package static func countsRepartitionTopic(group: String) -> String { "\(group)-counts-repartition" }

    /// Whether the counts stage runs: examples on and input keyed by user (the
    /// interactions tasks then hold each user's count). Then the interactions
    /// tasks also send every interaction, and the item tasks each impression's
    /// items with their features as of it, to the user's counts task, which
    /// joins them into the examples in event-time order; the item features
    /// still take every event directly (docs/EMBEDDINGS.md, "The join in the counts stage").
    package var routesExamplesThroughCounts: Bool {
        embeddings.enabled && embeddings.examples && sources.keyedByUser
    }

    /// Whether the item stage needs non-positive interactions: only for
    /// the examples' join when it takes interactions from the sources
    /// directly (no counts stage). Item features and co-occurrence rows
    /// ignore skips.
    package var itemStageTakesSkips: Bool {
        embeddings.enabled && embeddings.examples && !routesExamplesThroughCounts
    }
}
