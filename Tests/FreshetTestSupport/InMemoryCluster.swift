import FreshetKafka
import FreshetRedis
import FreshetRuntime

/// The engine's servers in memory: `InMemoryKafka` and `InMemoryRedis`
/// behind `EngineConnections`, so a `StreamProcessor` built with it runs
/// without a broker or Redis (see `EngineDriver`). The configuration the
/// processor passes (brokers, Redis URL) is ignored.
package final class InMemoryCluster: EngineConnections {
    package let kafka = InMemoryKafka()
    package let redis = InMemoryRedis()
    /// Called with each consumer the engine makes (the driver pairs it with its processor).
    var consumerMade: ((InMemoryConsumer) -> Void)?
    /// The configuration of every consumer the engine made, in order.
    package private(set) var consumerConfigs: [KafkaConfig] = []

    package init() {}

    package func makeAdmin(config: KafkaConfig) throws(KafkaError) -> any EngineAdmin { InMemoryAdmin(kafka: kafka) }

    package func makeProducer(config: KafkaConfig) throws(KafkaError) -> any EngineProducer { InMemoryProducer(kafka: kafka) }

    package func makeConsumer(config: KafkaConfig, groupId: String, topics: [String],
                              rebalance: any EngineRebalanceHandler) throws(KafkaError) -> any EngineConsumer {
        consumerConfigs.append(config)
        let consumer = InMemoryConsumer(kafka: kafka, groupId: groupId, topics: topics, rebalance: rebalance)
        kafka.join(consumer)
        consumerMade?(consumer)
        return consumer
    }

    package func endOffsets(config: KafkaConfig, topics: [String]) throws(KafkaError) -> [TopicPartition: Int64] {
        var result: [TopicPartition: Int64] = [:]
        for topic in topics {
            for tp in kafka.partitions(of: topic) { result[tp] = kafka.endOffset(tp) }
        }
        return result
    }

    /// Reads made with `readToEnd` that start some partition at its beginning
    /// (`KafkaOffset.beginning`): the whole-topic reads of the dead-letter topic after a store loss.
    package private(set) var readsFromTheBeginning = 0

    package func readToEnd(config: KafkaConfig, from starts: [TopicPartition: Int64]) throws(KafkaError) -> [ConsumedRecord] {
        if starts.values.contains(KafkaOffset.beginning) { readsFromTheBeginning += 1 }
        var result: [ConsumedRecord] = []
        for (tp, start) in starts.sorted(by: { $0.key < $1.key }) {
            let from = max(start, kafka.logStart[tp] ?? 0)
            for offset in stride(from: from, to: kafka.endOffset(tp), by: 1) {
                result.append(kafka.consumedRecord(tp, offset: offset, topicIndex: 0))
            }
        }
        return result
    }

    package func makeRedisStore(target: RedisTarget, shouldStop: @escaping () -> Bool) throws(RedisError) -> any RedisStore {
        redis.makeStore()
    }
}
