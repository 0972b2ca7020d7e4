import Foundation
import FreshetCore
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import FreshetWorkload
import XCTest

/// Kafka in, Redis out, against a real broker and a real Redis: every feature
/// in Redis must equal the oracle's, exactly.
final class EndToEndTests: XCTestCase {
    static let partitions: Int32 = 4

    /// A seeded stream with several partitions, out-of-order events (minutes),
    /// late events (days, some beyond the 7-day window), bad events of every
    /// kind, spanning more than one event-time day.
    static func stream(seed: UInt64, events: Int = 30_000) -> [SyntheticEvent] {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let day: Int64 = 86_400_000
        var config = SyntheticConfig(seed: seed, users: 400, items: 3_000, startMs: now - 3 * day, spanMs: 2 * day, nowMs: now)
        config.outOfOrderMs = 3 * 60_000
        config.lateFraction = 0.02
        config.lateByMs = day...(10 * day)
        config.badFraction = 0.01
        return Array(SyntheticStream(config: config, count: events))
    }

    func testFeaturesMatchTheOracleExactly() throws {
        try runScenario(randomKeys: false, keyedByUser: true)
    }

    /// Producers that do not key by user: the topology says so, user features
    /// are computed after a repartition by user, and the features are the same.
    func testRandomKeysGiveTheSameFeatures() throws {
        try runScenario(randomKeys: true, keyedByUser: false)
    }

    func runScenario(randomKeys: Bool, keyedByUser: Bool) throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let events = Self.stream(seed: 42)
        let produced = try Self.produce(events, to: cluster, randomKeys: randomKeys)
        let oracle = FeatureOracle(events: produced)
        XCTAssertGreaterThan(oracle.deadLetters, 50)

        let topology = try Self.writeTopology(in: cluster.directory, extra: "sources:\n  keyed_by_user: \(keyedByUser)\n")
        let run = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                           "--group", "e2e", "--stop-at-end", "--admin-port=-1"],
                                          logPath: "\(cluster.directory)/freshet.log")
        let status = try run.wait(timeout: 240)
        XCTAssertEqual(status, 0, "freshet exited with \(status):\n\(run.logTail())")

        let redis = try RedisConnection(url: cluster.redisURL)
        try Self.assertRedisMatches(oracle, redis: redis)
        XCTAssertEqual(try Self.countRecords(topic: "freshet-dlq", brokers: cluster.brokers), oracle.deadLetters,
                       "every bad event reaches the dead-letter topic exactly once")
    }

    // MARK: - Helpers shared by the integration tests

    static func produce(_ events: [SyntheticEvent], to cluster: LocalCluster, randomKeys: Bool) throws -> [FeatureOracle.Event] {
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "interactions", partitions: partitions),
                                NewTopic(name: "impressions", partitions: partitions)])
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers))
        var produced: [FeatureOracle.Event] = []
        var random = SplitMix64(seed: 7)
        for event in events {
            let topic = event.topic == .impressions ? "impressions" : "interactions"
            let key = randomKeys ? "k\(random.next() % 100_000)" : event.key
            let partition = KafkaProducer.partition(forKey: Array(key.utf8), partitionCount: partitions)
            try producer.produce(topic: topic, partition: partition, key: Array(key.utf8), value: event.json)
            let body: FeatureOracle.Event.Body
            switch event.expected {
            case .interaction(let i): body = .interaction(i)
            case .impression(let i): body = .impression(i)
            case .bad: body = .bad
            }
            produced.append(FeatureOracle.Event(topic: topic, partition: partition, body: body))
        }
        try producer.flush(timeoutMs: 60_000)
        guard producer.deliveryFailures == 0 else { throw TestFailure("\(producer.deliveryFailures) events not delivered") }
        return produced
    }

    static func writeTopology(in directory: String, extra: String = "") throws -> String {
        let path = "\(directory)/topology-\(UUID().uuidString.prefix(6)).yaml"
        let text = """
        checkpoint:
          interval: 1s
        progress:
          interval: 0s
        \(extra)
        """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Every feature in Redis equals the oracle's (`FeatureOracle.differences`),
    /// and the window holds counts (the stream is not all late).
    static func assertRedisMatches(_ oracle: FeatureOracle, redis: any FeatureStoreReading,
                                   file: StaticString = #filePath, line: UInt = #line) throws {
        let differences = try oracle.differences(from: redis)
        XCTAssertEqual(differences, [], "features differ from the oracle:\n\(differences.joined(separator: "\n"))", file: file, line: line)
        XCTAssertGreaterThan(oracle.items.values.filter { $0.popularity > 0 }.count, 100, "the window holds counts", file: file, line: line)
    }

    /// Keys matching `pattern` that hold `field` (see `FeatureOracle.countKeys`).
    static func countKeys(_ redis: any FeatureStoreReading, pattern: String, withField field: String) throws -> Int {
        try FeatureOracle.countKeys(redis, pattern: pattern, withField: field)
    }

    /// Reads a topic to its end with a fresh group and counts the records.
    /// With `lines`, counts newline-separated lines (JSON Lines messages) instead of messages.
    static func countRecords(topic: String, brokers: String, lines: Bool = false) throws -> Int {
        let records = try readTopic(topic, brokers: brokers)
        return lines
            ? records.reduce(0) { $0 + $1.value.split(separator: UInt8(ascii: "\n")).count }
            : records.count
    }

    /// Every record of `topic`, read to its end without joining a group (a
    /// group join costs seconds on every call).
    static func readTopic(_ topic: String, brokers: String) throws -> [ConsumedRecord] {
        let config = KafkaConfig(bootstrapServers: brokers)
        guard let partitions = try KafkaAdmin(config: config).partitionCount(topic: topic, timeoutMs: 10_000) else {
            throw TestFailure("topic \(topic) does not exist")
        }
        let starts = Dictionary(uniqueKeysWithValues: (0..<Int32(partitions)).map { (TopicPartition(topic: topic, partition: $0), Int64(0)) })
        return try KafkaConsumer.readToEnd(config: config, from: starts, timeoutMs: 60_000)
    }
}
