import FreshetRedis

/// Everything `freshet run` needs besides the topology.
public struct ProcessorOptions: Sendable {
    public var brokers: String
    /// One Redis; ignored when `redisCluster` is set.
    public var redis: RedisEndpoint
    /// A Redis Cluster as the online store (`redis+cluster://...`), instead of `redis`.
    public var redisCluster: ClusterEndpoints?
    public var group: String
    /// Bounded run: stop once every assigned partition reached its end.
    public var stopAtEnd: Bool
    /// Extra librdkafka properties (from the environment or flags), on top of the topology's.
    public var kafkaProperties: [String: String]

    public init(brokers: String, redis: RedisEndpoint, group: String, stopAtEnd: Bool = false,
                kafkaProperties: [String: String] = [:]) {
        self.brokers = brokers
        self.redis = redis
        self.group = group
        self.stopAtEnd = stopAtEnd
        self.kafkaProperties = kafkaProperties
    }

    /// One Redis or a cluster, as `RedisTarget(url:)` parsed it.
    public init(brokers: String, redisTarget: RedisTarget, group: String, stopAtEnd: Bool = false,
                kafkaProperties: [String: String] = [:]) {
        switch redisTarget {
        case .single(let endpoint):
            self.init(brokers: brokers, redis: endpoint, group: group, stopAtEnd: stopAtEnd, kafkaProperties: kafkaProperties)
        case .cluster(let endpoints):
            // `redis` is not used with a cluster; the first seed keeps it meaningful in logs.
            self.init(brokers: brokers, redis: endpoints.seeds[0], group: group, stopAtEnd: stopAtEnd, kafkaProperties: kafkaProperties)
            self.redisCluster = endpoints
        }
    }

    public var redisTarget: RedisTarget { redisCluster.map { .cluster($0) } ?? .single(redis) }
}
