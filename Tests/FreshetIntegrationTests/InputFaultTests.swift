import Foundation
import FreshetCore
import FreshetEmbeddings
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import XCTest

/// Inputs the broker accepts but that broke the processor (issue 8, parts 3-6),
/// each against a real broker and Redis with exact features asserted after.
final class InputFaultTests: XCTestCase {
    static let topologyBase = """
        checkpoint:
          interval: 1s
        progress:
          interval: 0s
        sources:
          partitions: 1
        embeddings:
          enabled: false

        """

    /// Oversized and odd records on both topics in one bounded run: every bad
    /// one becomes exactly one dead letter that fits in a message, every valid
    /// one is counted, and nothing after them is lost.
    func testOversizedAndOddRecordsAreHandledOnTheWayOut() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let ts = InputFaultFixture.recentEventTime()
        try InputFaultFixture.createTopics(cluster, partitions: 1)
        let producer = try InputFaultFixture.bigProducer(cluster)

        let nonJSON = [UInt8](repeating: UInt8(ascii: "x"), count: 1_000_000)
        let nested300 = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        let nested1001 = String(repeating: "[", count: 1001) + String(repeating: "]", count: 1001)
        let interactions: [(key: String?, value: [UInt8]?)] = [
            ("u0", nonJSON),                                   // 0: ~1 MB, not JSON
            ("u-null", nil),                                   // 1: tombstone
            ("u-empty", []),                                   // 2: empty value
            ("u1", Array(#"{"user_id":"u1","item_id":"i1","action":"click","ts":\#(ts),"extra":\#(nested300)}"#.utf8)),
            ("u2", Array(#"{"user_id":"u2","item_id":"i2","action":"click","ts":\#(ts),"extra":\#(nested1001)}"#.utf8)),
        ]
        for record in interactions {
            try producer.produce(topic: "interactions", partition: 0, key: record.key.map { Array($0.utf8) }, value: record.value)
        }
        let longItem = "L" + String(repeating: "l", count: 390_000)
        let hugeItem = "H" + String(repeating: "h", count: 950_000)
        let listed = (0..<70_000).map { "n\($0)" }
        let impressions: [String] = [
            // 0: ~800 KB, valid: a long request id and a very long item id.
            #"{"request_id":"\#(String(repeating: "r", count: 400_000))","user_id":"u5","items_shown":["\#(longItem)","small"],"ts":\#(ts)}"#,
            // 1: one item event larger than any message (output.max_message_bytes 900000).
            #"{"user_id":"u6","items_shown":["\#(hugeItem)","s1"],"ts":\#(ts)}"#,
            // 2: 70,000 items shown (sub-indices past 65,535).
            #"{"user_id":"u7","items_shown":[\#(listed.map { "\"\($0)\"" }.joined(separator: ","))],"ts":\#(ts)}"#,
        ]
        for value in impressions {
            try producer.produce(topic: "impressions", partition: 0, key: nil, value: Array(value.utf8))
        }
        try producer.flush(timeoutMs: 60_000)
        XCTAssertEqual(producer.deliveryFailures, 0, "the broker accepts every input record")

        let status = try InputFaultFixture.boundedRun(cluster, topology: Self.topologyBase + "output:\n  max_message_bytes: 900000\n")
        XCTAssertEqual(status.code, 0, "freshet exited with \(status.code):\n\(status.log)")

        let redis = try RedisConnection(url: cluster.redisURL)
        XCTAssertEqual(try InputFaultFixture.field(redis, "user:u1", "interaction_count"), "1", "valid JSON nested 300 deep is accepted")
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:i1", "popularity_7d"), "1")
        XCTAssertNil(try InputFaultFixture.field(redis, "item:i2", "popularity_7d"), "nested 1001 deep is dead-lettered")
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:\(longItem)", "impressions_7d"), "1", "the 800 KB impression's long item")
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:small", "impressions_7d"), "1", "the 800 KB impression's other item")
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:s1", "impressions_7d"), "1", "items that fit are routed")
        XCTAssertNil(try InputFaultFixture.field(redis, "item:\(hugeItem)", "impressions_7d"))
        var missing: [String] = []
        for index in Array(0..<20) + Array(65_500..<70_000) {
            let value = try InputFaultFixture.field(redis, "item:n\(index)", "impressions_7d")
            if value != "1" { missing.append("n\(index)=\(value ?? "nil")") }
        }
        XCTAssertEqual(missing, [], "every item of a 70,000-item list is counted once")

        let letters = try InputFaultFixture.readAll(topic: "freshet-dlq", brokers: cluster.brokers)
        var byOrigin: [String: ConsumedRecord] = [:]
        for letter in letters {
            let topic = InputFaultFixture.header(letter, "freshet.source.topic") ?? "?"
            let offset = InputFaultFixture.header(letter, "freshet.source.offset") ?? "?"
            XCTAssertNil(byOrigin["\(topic)/\(offset)"], "one dead letter per record: \(topic)/\(offset)")
            byOrigin["\(topic)/\(offset)"] = letter
        }
        XCTAssertEqual(Set(byOrigin.keys), ["interactions/0", "interactions/1", "interactions/2", "interactions/4", "impressions/1"])

        let big = try XCTUnwrap(byOrigin["interactions/0"])
        XCTAssertEqual(InputFaultFixture.header(big, "freshet.error.reason"), "malformed_json")
        XCTAssertEqual(InputFaultFixture.header(big, "freshet.value.truncated"), "1000000", "the original length")
        XCTAssertLessThan(big.value.count, 900_000)
        XCTAssertGreaterThan(big.value.count, 800_000)
        XCTAssertEqual(big.value, Array(nonJSON.prefix(big.value.count)), "a prefix of the original value")
        XCTAssertEqual(big.key, Array("u0".utf8))

        let tombstone = try XCTUnwrap(byOrigin["interactions/1"])
        XCTAssertEqual(InputFaultFixture.header(tombstone, "freshet.error.reason"), "null_value")
        XCTAssertTrue(tombstone.valueIsNull, "a null value is dead-lettered as a null value")
        let empty = try XCTUnwrap(byOrigin["interactions/2"])
        XCTAssertEqual(InputFaultFixture.header(empty, "freshet.error.reason"), "malformed_json")
        XCTAssertFalse(empty.valueIsNull, "an empty value stays empty, not null")
        XCTAssertEqual(empty.value, [])

        let deep = try XCTUnwrap(byOrigin["interactions/4"])
        XCTAssertEqual(InputFaultFixture.header(deep, "freshet.error.reason"), "nesting_too_deep")
        XCTAssertNil(InputFaultFixture.header(deep, "freshet.value.truncated"))

        let tooLarge = try XCTUnwrap(byOrigin["impressions/1"])
        XCTAssertEqual(InputFaultFixture.header(tooLarge, "freshet.error.reason"), "record_too_large")
        XCTAssertEqual(InputFaultFixture.header(tooLarge, "freshet.source.partition"), "0")
        XCTAssertEqual(InputFaultFixture.header(tooLarge, "freshet.value.truncated"), String(impressions[1].utf8.count))
    }

    /// The dead-letter topic renamed between two runs of one group, then a
    /// floor past the topic's end (as after the topic was deleted and
    /// created again): each run reads the topic from its start, finishes,
    /// and sends each new bad record's letter once. Before, the floor
    /// (offsets without a topic name) sent the read looking for an end it
    /// could not reach: every start failed after 30 s (a user's finding).
    func testADeadLetterTopicRenamedOrBehindItsFloorDoesNotStopARun() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let ts = InputFaultFixture.recentEventTime()
        try InputFaultFixture.createTopics(cluster, partitions: 1)
        let producer = try InputFaultFixture.bigProducer(cluster)
        func send(_ values: [String]) throws {
            for value in values { try producer.produce(topic: "interactions", partition: 0, key: nil, value: Array(value.utf8)) }
            try producer.flush(timeoutMs: 30_000)
        }
        func click(_ user: String, _ dt: Int64) -> String {
            #"{"user_id":"\#(user)","item_id":"i1","action":"click","ts":\#(ts + dt)}"#
        }
        func origins(_ topic: String) throws -> [String] {
            try InputFaultFixture.readAll(topic: topic, brokers: cluster.brokers)
                .compactMap { InputFaultFixture.header($0, "freshet.source.offset") }.sorted()
        }
        let redis = try RedisConnection(url: cluster.redisURL)

        try send([click("u1", 0), "not json", click("u2", 1)])
        let first = try InputFaultFixture.boundedRun(cluster, topology: Self.topologyBase + "dead_letter_topic: dlq-a\n")
        XCTAssertEqual(first.code, 0, first.log)
        XCTAssertEqual(try origins("dlq-a"), ["1"])

        try send([click("u3", 2), "[1]"])
        let renamed = try InputFaultFixture.boundedRun(cluster, topology: Self.topologyBase + "dead_letter_topic: dlq-b\n")
        XCTAssertEqual(renamed.code, 0, "a renamed dead-letter topic: \(renamed.log)")
        XCTAssertEqual(try origins("dlq-b"), ["4"], "the new bad record's letter, once")
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:i1", "popularity_7d"), "3")

        // Every task's floor past dlq-b's end (1 letter), in the format written before floors named their topic.
        guard case .array(let floorKeys) = try redis.command(["KEYS", "freshet:faults:dlq:*"]) else {
            return XCTFail("no dead-letter floor keys")
        }
        XCTAssertFalse(floorKeys.isEmpty, "the runs recorded floors")
        for case .bulk(let key) in floorKeys {
            _ = try redis.command([Array("SET".utf8), key, Array("0:9".utf8)])
        }
        try send([click("u4", 3), "x"])
        let behind = try InputFaultFixture.boundedRun(cluster, topology: Self.topologyBase + "dead_letter_topic: dlq-b\n")
        XCTAssertEqual(behind.code, 0, "floors past the topic's end: \(behind.log)")
        XCTAssertEqual(try origins("dlq-b"), ["4", "6"], "one letter per bad record")
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:i1", "popularity_7d"), "4")
    }

    /// A checkpoint past its partition's end (the source topic deleted and
    /// created again under the group): the run refuses at once, saying what
    /// happened and what to do. Before, a bounded run on the test broker
    /// waited for ever at "lag 0" (a breaker's finding), and on Kafka the
    /// reset position's records would have been dropped as already seen.
    func testACheckpointPastItsPartitionsEndIsRefused() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let ts = InputFaultFixture.recentEventTime()
        try InputFaultFixture.createTopics(cluster, partitions: 1)
        let producer = try InputFaultFixture.bigProducer(cluster)
        func click(_ user: String) throws {
            let json = #"{"user_id":"\#(user)","item_id":"i1","action":"click","ts":\#(ts)}"#
            try producer.produce(topic: "interactions", partition: 0, key: nil, value: Array(json.utf8))
            try producer.flush(timeoutMs: 30_000)
        }
        for user in ["u1", "u2", "u3"] { try click(user) }
        let first = try InputFaultFixture.boundedRun(cluster, topology: Self.topologyBase)
        XCTAssertEqual(first.code, 0, first.log)
        // As if the topic had held 50 records before it was deleted and created again.
        let redis = try RedisConnection(url: cluster.redisURL)
        _ = try redis.command(["HSET", "freshet:faults:ckpt:interactions-0:meta", "next_offset", "50"])
        try click("u4")
        let started = Date()
        let second = try InputFaultFixture.boundedRun(cluster, topology: Self.topologyBase)
        XCTAssertEqual(second.code, 1, second.log)
        XCTAssertTrue(second.log.contains("interactions[0] resumes at 50 but ends at 4"), second.log)
        XCTAssertTrue(second.log.contains("start the group over"), second.log)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60, "refused at once, not after a wait")
    }

    /// Ids are bytes: "caf\u00e9" and "cafe\u0301" (one text in two Unicode
    /// normal forms) are two items and two users, each counted once.
    func testIdsThatDifferOnlyInTheirBytesAreDifferentKeys() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let ts = InputFaultFixture.recentEventTime()
        try InputFaultFixture.createTopics(cluster, partitions: 1)
        let producer = try InputFaultFixture.bigProducer(cluster)
        let events = [
            #"{"user_id":"u1","item_id":"caf\u00e9","action":"click","ts":\#(ts)}"#,
            #"{"user_id":"u1","item_id":"cafe\u0301","action":"click","ts":\#(ts + 1)}"#,
            #"{"user_id":"us\u00e9r","item_id":"x","action":"click","ts":\#(ts + 2)}"#,
            #"{"user_id":"use\u0301r","item_id":"x","action":"like","ts":\#(ts + 3)}"#,
        ]
        for event in events {
            try producer.produce(topic: "interactions", partition: 0, key: nil, value: Array(event.utf8))
        }
        try producer.flush(timeoutMs: 30_000)
        let status = try InputFaultFixture.boundedRun(cluster, topology: Self.topologyBase)
        XCTAssertEqual(status.code, 0, status.log)

        let redis = try RedisConnection(url: cluster.redisURL)
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        XCTAssertEqual(composed, decomposed, "Swift calls them equal: the fault this test guards against")
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:\(composed)", "popularity_7d"), "1")
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:\(decomposed)", "popularity_7d"), "1")
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:x", "popularity_7d"), "2")
        XCTAssertEqual(try InputFaultFixture.field(redis, "user:us\u{E9}r", "interaction_count"), "1")
        XCTAssertEqual(try InputFaultFixture.field(redis, "user:use\u{301}r", "interaction_count"), "1")
        // Both forms in u1's recent items, newest first.
        let recent = try XCTUnwrap(try InputFaultFixture.field(redis, "user:u1", "recent_items_50"))
        XCTAssertEqual(Array(recent.utf8), Array("[\"cafe\u{301}\",\"caf\u{E9}\"]".utf8))
        XCTAssertEqual(try InputFaultFixture.field(redis, "user:u1", "interaction_count"), "2")
        let members = (try redis.command(["ZRANGE", "trending", "0", "-1"]).array ?? []).compactMap(\.string)
        XCTAssertEqual(Set(members.map { Array($0.utf8) }), Set([composed, decomposed, "x"].map { Array($0.utf8) }))
    }

    /// A historical backfill: `event_time.min_timestamp` lowered to 1990 lets
    /// 1998 events through (the default floor, 2000, dead-letters them).
    func testBackfillBeforeTheDefaultFloorWithMinTimestamp() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try InputFaultFixture.createTopics(cluster, partitions: 1)
        let producer = try InputFaultFixture.bigProducer(cluster)
        let t1998: Int64 = 883_612_800_000 // 1998-01-01T00:00:00Z
        for (k, user) in ["a", "b", "c"].enumerated() {
            let event = #"{"user_id":"\#(user)","item_id":"old","action":"click","ts":\#(t1998 + Int64(k) * 60_000)}"#
            try producer.produce(topic: "interactions", partition: 0, key: Array(user.utf8), value: Array(event.utf8))
        }
        try producer.flush(timeoutMs: 30_000)
        let status = try InputFaultFixture.boundedRun(cluster, topology: Self.topologyBase + "event_time:\n  min_timestamp: 1990-01-01\n")
        XCTAssertEqual(status.code, 0, status.log)
        let redis = try RedisConnection(url: cluster.redisURL)
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:old", "popularity_7d"), "3")
        XCTAssertEqual(try InputFaultFixture.field(redis, "user:c", "updated_ms"), String(t1998 + 120_000))
        XCTAssertEqual(try EndToEndTests.countRecords(topic: "freshet-dlq", brokers: cluster.brokers), 0)
    }
}

/// Shared set-up of the input-fault tests.
enum InputFaultFixture {
    /// An event time about `agoMs` ago (a minute by default), for tests that
    /// read windowed counts after a few events at it and a few s later. Features are as of the
    /// final watermark (largest time − 5 s, out-of-orderness): events in the
    /// first seconds of an hour leave the watermark in the hour before, and
    /// their pane is not visible yet (`popularity_7d` 0 instead of 2, seen
    /// when a test started at 20:01:03). So the time keeps clear of that.
    static func recentEventTime(agoMs: Int64 = 60_000) -> Int64 {
        let ts = Int64(Date().timeIntervalSince1970 * 1000) - agoMs
        return ts % 3_600_000 < 10_000 ? ts - 15_000 : ts
    }

    static func createTopics(_ cluster: LocalCluster, partitions: Int32) throws {
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "interactions", partitions: partitions),
                                NewTopic(name: "impressions", partitions: partitions)])
    }

    /// A producer that sends what the broker accepts: messages up to 2 MB.
    static func bigProducer(_ cluster: LocalCluster) throws -> KafkaProducer {
        try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers, properties: ["message.max.bytes": "2000000"]))
    }

    static func boundedRun(_ cluster: LocalCluster, topology: String, group: String = "faults") throws -> (code: Int32, log: String) {
        let path = "\(cluster.directory)/topology-\(UUID().uuidString.prefix(6)).yaml"
        try topology.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try FreshetBinary.start(["run", "--topology", path, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                           "--group", group, "--stop-at-end", "--admin-port=-1"],
                                          logPath: "\(cluster.directory)/freshet-\(UUID().uuidString.prefix(6)).log")
        let code = try run.wait(timeout: 240)
        return (code, run.logTail(lines: 60))
    }

    static func field(_ redis: RedisConnection, _ key: String, _ field: String) throws -> String? {
        try redis.hgetall(key).first { $0.field == field }.map { String(decoding: $0.value, as: UTF8.self) }
    }

    static func header(_ record: ConsumedRecord, _ name: String) -> String? {
        record.headers.first { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every record of `topic`, read to its end by a fresh group, headers included.
    static func readAll(topic: String, brokers: String) throws -> [ConsumedRecord] {
        try EndToEndTests.readTopic(topic, brokers: brokers)
    }
}

/// Dead letters are deduplicated across a crash replay, as repartitioned
/// records are: the replay after SIGKILL sends no letter a second time.
final class DeadLetterReplayTests: XCTestCase {
    func testCrashReplayDoesNotDuplicateDeadLetters() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let ts = InputFaultFixture.recentEventTime()
        try InputFaultFixture.createTopics(cluster, partitions: 1)
        let producer = try InputFaultFixture.bigProducer(cluster)
        let values = [
            #"{"user_id":"u1","item_id":"i1","action":"click","ts":\#(ts)}"#,
            "not json",
            #"{"user_id":"u1","item_id":"i2","action":"buy","ts":\#(ts + 1)}"#,
            #"{"user_id":"u2","item_id":"i1","action":"click","ts":\#(ts + 2)}"#,
            "[1,2]",
        ]
        for value in values {
            try producer.produce(topic: "interactions", partition: 0, key: nil, value: Array(value.utf8))
        }
        try producer.flush(timeoutMs: 30_000)
        // No checkpoint before the crash: the replay starts from the beginning.
        let topology = "\(cluster.directory)/no-checkpoint.yaml"
        try InputFaultTests.topologyBase.replacingOccurrences(of: "interval: 1s", with: "interval: 1h")
            .write(toFile: topology, atomically: true, encoding: .utf8)
        let arguments = ["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                         "--group", "replay", "--admin-port=-1"]
        let first = try FreshetBinary.start(arguments, logPath: "\(cluster.directory)/first.log")
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, (try? EndToEndTests.countRecords(topic: "freshet-dlq", brokers: cluster.brokers)) != 3 {
            usleep(300_000)
        }
        first.signal(SIGKILL)
        _ = try first.wait(timeout: 10)
        XCTAssertEqual(try EndToEndTests.countRecords(topic: "freshet-dlq", brokers: cluster.brokers), 3, first.logTail())

        let second = try FreshetBinary.start(arguments + ["--stop-at-end"], logPath: "\(cluster.directory)/second.log")
        XCTAssertEqual(try second.wait(timeout: 120), 0, second.logTail())
        let letters = try InputFaultFixture.readAll(topic: "freshet-dlq", brokers: cluster.brokers)
        XCTAssertEqual(letters.compactMap { InputFaultFixture.header($0, "freshet.source.offset") }.sorted(), ["1", "2", "4"],
                       "one dead letter per bad record after the replay")
        let redis = try RedisConnection(url: cluster.redisURL)
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:i1", "popularity_7d"), "2")
        XCTAssertEqual(try InputFaultFixture.field(redis, "user:u1", "interaction_count"), "1")
    }
}

/// The examples topic as it exists: its default name is shared by every
/// group, so it may have been created with another partition count.
final class ExamplesTopicTests: XCTestCase {
    /// An examples topic with fewer partitions than the sources: the
    /// examples are spread over the partitions it has. Before, they were
    /// sent to partitions it lacked and every start failed
    /// (_UNKNOWN_PARTITION, a breaker's finding). A topology without
    /// examples creates no examples topic.
    func testAnExamplesTopicWithFewerPartitionsThanTheSourcesIsWritten() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let ts = InputFaultFixture.recentEventTime()
        try InputFaultFixture.createTopics(cluster, partitions: 4)
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "ex", partitions: 2)])
        let producer = try InputFaultFixture.bigProducer(cluster)
        func send(_ topic: String, _ user: String, _ json: String) throws {
            let key = Array(user.utf8)
            let partition = key.withUnsafeBytes { KafkaProducer.partition(forKey: $0, partitionCount: 4) }
            try producer.produce(topic: topic, partition: partition, key: key, value: Array(json.utf8))
        }
        for u in 0..<6 {
            try send("impressions", "u\(u)", #"{"user_id":"u\#(u)","items_shown":["a","b","c"],"ts":\#(ts + Int64(u))}"#)
            try send("interactions", "u\(u)", #"{"user_id":"u\#(u)","item_id":"b","action":"click","ts":\#(ts + 1_000 + Int64(u))}"#)
        }
        try producer.flush(timeoutMs: 30_000)
        let topology = """
            checkpoint:
              interval: 1s
            progress:
              interval: 0s
            sources:
              partitions: 4
            embeddings:
              enabled: true
              examples: true
              examples_topic: ex

            """
        let run = try InputFaultFixture.boundedRun(cluster, topology: topology)
        XCTAssertEqual(run.code, 0, run.log)
        XCTAssertEqual(try admin.partitionCount(topic: "ex", timeoutMs: 5_000), 2, "the topic keeps its count")
        let bundles = try InputFaultFixture.readAll(topic: "ex", brokers: cluster.brokers)
        let examples = try bundles.flatMap { try ExampleCodec.decodeBundle($0.value) }
        XCTAssertEqual(Set(examples.filter { $0.label == .positive }.map(\.userId)), Set((0..<6).map { "u\($0)" }),
                       "each user's click joined its impression")

        let off = try InputFaultFixture.boundedRun(
            cluster, topology: topology.replacingOccurrences(of: "examples: true", with: "examples: false")
                .replacingOccurrences(of: "examples_topic: ex", with: "examples_topic: ex-unused"),
            group: "no-examples")
        XCTAssertEqual(off.code, 0, off.log)
        XCTAssertNil(try admin.partitionCount(topic: "ex-unused", timeoutMs: 5_000), "no examples, no examples topic")
    }
}
