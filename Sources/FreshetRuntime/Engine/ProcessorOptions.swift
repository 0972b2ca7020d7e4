import FreshetRedis

/// Everything `freshet run` needs besides the topology.
public struct ProcessorOptions: Sendable {
    public var brokers: String
    public var redis: RedisEndpoint
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
}
