import Foundation
import FreshetKafka
import FreshetRedis

// The engine's narrow view of its servers. The real clients (librdkafka's
// consumer, producer and admin client; Redis stores) conform as they are; a
// test injects an in-memory cluster instead (Tests/FreshetTestSupport/
// InMemoryCluster.swift), so the whole `StreamProcessor` runs in process.
//
// Every call here is made at batch granularity (a poll of up to 4096
// records, a produced bundle of up to 256 KiB, a pipeline of fenced writes),
// never per record, so dispatching through an existential costs nothing
// measurable on the hot path.

/// What the engine needs from its consumer-group member.
/// All calls come from the processing thread.
package protocol EngineConsumer: AnyObject {
    /// Hands up to `maxRecords` records to `each`, one at a time, as views
    /// valid only during that call; returns how many, the partition ends
    /// reached and errors. Rebalance callbacks run inside this call
    /// (librdkafka's contract).
    /// Each record is also shown to `ahead` when polled, up to `lookahead`
    /// records before `each` gets it; every record shown is handed to
    /// `each` before a rebalance callback runs and before the poll returns.
    func poll(maxRecords: Int, timeoutMs: Int32, lookahead: Int,
              ahead: (ConsumedRecordView) -> Void,
              each: (ConsumedRecordView) -> Void) throws(KafkaError) -> ConsumerPollSummary
    /// Commits next offsets to the group.
    func commit(_ offsets: [TopicPartition: Int64], synchronous: Bool) throws(KafkaError)
    /// The group's committed next offset of each partition that has one.
    func committedOffsets(for partitions: [TopicPartition], timeoutMs: Int32) throws(KafkaError) -> [TopicPartition: Int64]
    /// Makes the next fetch of an assigned partition start at `offset`.
    func seek(_ partition: TopicPartition, offset: Int64, timeoutMs: Int32) throws(KafkaError)
    func pause(_ partitions: [TopicPartition]) throws(KafkaError)
    func resume(_ partitions: [TopicPartition]) throws(KafkaError)
    /// The partition's end offset as last seen by the client (nil: not known yet).
    func cachedHighWatermark(_ partition: TopicPartition) -> Int64?
    /// The partition's earliest retained offset.
    func earliestOffset(_ partition: TopicPartition, timeoutMs: Int32) throws(KafkaError) -> Int64
    /// Leaves the group (the revoke callback runs for what is still assigned).
    func close() throws(KafkaError)
    /// This member's id in the group ("" before joining), for `/tasks`.
    var memberId: String { get }
    /// The group generation of the current assignment (nil before joining), for `/tasks`.
    var generationId: Int32? { get }
}

/// What the engine's record collector (`KafkaTaskOutput`) and its commit
/// protocol need from the producer. Processing thread only.
package protocol EngineProducer: AnyObject {
    /// Enqueues one record (a bundle of repartitioned records, a marker, a dead letter).
    /// A nil `partition` lets the producer choose.
    func produce(topic: String, partition: Int32?, key: [UInt8]?, value: [UInt8]?,
                 headers: [(String, [UInt8])], timestampMs: Int64?) throws(KafkaError)
    /// Serves delivery reports; returns how many were served.
    @discardableResult
    func poll(timeoutMs: Int32) -> Int
    /// Waits until every enqueued record is acknowledged by the broker.
    func flush(timeoutMs: Int32) throws(KafkaError)
    /// Starts keeping the highest delivered offset per partition of `topic`.
    func watchDeliveredOffsets(topic: String)
    /// Per partition of the watched topic, the highest offset delivered so far.
    var deliveredHighOffsets: [Int32: Int64] { get }
}

/// Topic administration at start-up.
package protocol EngineAdmin: AnyObject {
    func partitionCount(topic: String, timeoutMs: Int32) throws(KafkaError) -> Int?
    /// Creates the topics that do not exist yet (existing ones are left as they are).
    func createTopics(_ topics: [NewTopic], timeoutMs: Int32) throws(KafkaError)
}

/// The rebalance callbacks, without the librdkafka handle (`LiveConnections`
/// adapts them to librdkafka's `RebalanceListener`; `RebalanceBridge` forwards them to the processor).
package protocol EngineRebalanceHandler: AnyObject {
    /// Returns the offset to start each partition from (absent: the committed offset, else the earliest).
    func assigned(_ partitions: [TopicPartition]) -> [TopicPartition: Int64]
    func revoked(_ partitions: [TopicPartition])
    func lost(_ partitions: [TopicPartition])
}

/// Makes the engine's clients. The default, `LiveConnections`, makes
/// librdkafka and hiredis clients from the processor's configuration; a test
/// passes an in-memory cluster (which ignores the configuration).
package protocol EngineConnections: AnyObject {
    func makeAdmin(config: KafkaConfig) throws(KafkaError) -> any EngineAdmin
    func makeProducer(config: KafkaConfig) throws(KafkaError) -> any EngineProducer
    func makeConsumer(config: KafkaConfig, groupId: String, topics: [String],
                      rebalance: any EngineRebalanceHandler) throws(KafkaError) -> any EngineConsumer
    /// Each topic partition's end offset (no group joined).
    func endOffsets(config: KafkaConfig, topics: [String]) throws(KafkaError) -> [TopicPartition: Int64]
    /// Every record from `starts` to each partition's end (no group joined).
    func readToEnd(config: KafkaConfig, from starts: [TopicPartition: Int64]) throws(KafkaError) -> [ConsumedRecord]
    /// A store (one connection, or a cluster client) for `target`.
    func makeRedisStore(target: RedisTarget, shouldStop: @escaping () -> Bool) throws(RedisError) -> any RedisStore
}

/// The real servers: librdkafka and hiredis clients.
package final class LiveConnections: EngineConnections {
    package init() {}

    package func makeAdmin(config: KafkaConfig) throws(KafkaError) -> any EngineAdmin {
        try KafkaAdmin(config: config)
    }

    package func makeProducer(config: KafkaConfig) throws(KafkaError) -> any EngineProducer {
        try KafkaProducer(config: config)
    }

    package func makeConsumer(config: KafkaConfig, groupId: String, topics: [String],
                              rebalance: any EngineRebalanceHandler) throws(KafkaError) -> any EngineConsumer {
        try KafkaConsumer(config: config, groupId: groupId, topics: topics,
                          rebalanceListener: RebalanceListenerAdapter(handler: rebalance))
    }

    package func endOffsets(config: KafkaConfig, topics: [String]) throws(KafkaError) -> [TopicPartition: Int64] {
        try KafkaConsumer.probeEndOffsets(config: config, topics: topics)
    }

    package func readToEnd(config: KafkaConfig, from starts: [TopicPartition: Int64]) throws(KafkaError) -> [ConsumedRecord] {
        try KafkaConsumer.readToEnd(config: config, from: starts)
    }

    package func makeRedisStore(target: RedisTarget, shouldStop: @escaping () -> Bool) throws(RedisError) -> any RedisStore {
        try target.makeStore(shouldStop: shouldStop)
    }
}

/// librdkafka's rebalance callbacks (run inside `poll`, on the processing
/// thread) forwarded to the engine's handler.
private final class RebalanceListenerAdapter: RebalanceListener, @unchecked Sendable {
    // Only ever called on the processing thread, inside `consumer.poll`.
    let handler: any EngineRebalanceHandler
    init(handler: any EngineRebalanceHandler) { self.handler = handler }

    func partitionsAssigned(_ partitions: [TopicPartition], consumer: KafkaConsumer) -> [TopicPartition: Int64] {
        handler.assigned(partitions)
    }

    func partitionsRevoked(_ partitions: [TopicPartition], consumer: KafkaConsumer) { handler.revoked(partitions) }

    func partitionsLost(_ partitions: [TopicPartition], consumer: KafkaConsumer) { handler.lost(partitions) }
}

extension KafkaConsumer: EngineConsumer {}
extension KafkaProducer: EngineProducer {}
extension KafkaAdmin: EngineAdmin {}
