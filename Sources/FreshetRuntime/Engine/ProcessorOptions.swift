import FreshetRedis

/// Everything `freshet run` needs besides the topology.
package struct ProcessorOptions: Sendable {
    package var brokers: String
    /// One Redis; ignored when `redisCluster` is set.
    package var redis: RedisEndpoint
    /// A Redis Cluster as the online store (`redis+cluster://...`), instead of `redis`.
    package var redisCluster: ClusterEndpoints?
    package var group: String
    /// Bounded run: stop once every assigned partition reached its end.
    package var stopAtEnd: Bool
    /// Extra librdkafka properties (from the environment or flags), on top of the topology's.
    package var kafkaProperties: [String: String]

    package init(brokers: String, redis: RedisEndpoint, group: String, stopAtEnd: Bool = false,
                kafkaProperties: [String: String] = [:]) {
        self.brokers = brokers
        self.redis = redis
        self.group = group
        self.stopAtEnd = stopAtEnd
        self.kafkaProperties = kafkaProperties
    }

    /// One Redis or a cluster, as `RedisTarget(url:)` parsed it.
    package init(brokers: String, redisTarget: RedisTarget, group: String, stopAtEnd: Bool = false,
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

    package var redisTarget: RedisTarget { redisCluster.map { .cluster($0) } ?? .single(redis) }
}
