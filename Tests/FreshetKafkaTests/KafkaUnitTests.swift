import XCTest
@testable import FreshetKafka

/// Tests that need no broker.
final class KafkaUnitTests: XCTestCase {
    func testVersionIsReported() {
        XCTAssertFalse(LibrdkafkaVersion.string.isEmpty)
        XCTAssertGreaterThan(LibrdkafkaVersion.number, 0)
    }

    /// The 10 ms fetch queue backoff only where librdkafka has the property
    /// (2.2.0 on): an older one refuses unknown properties, and the consumer
    /// would not start at all.
    func testStreamingDefaultsFollowTheLoadedLibrdkafka() throws {
        func keys(_ version: Int) -> [String] { KafkaConsumer.streamingDefaults(librdkafkaVersion: version).map(\.key) }
        XCTAssertEqual(keys(0x0201_01FF), ["fetch.wait.max.ms", "queued.max.messages.kbytes"])
        XCTAssertEqual(keys(0x0202_00FF), ["fetch.wait.max.ms", "queued.max.messages.kbytes", "fetch.queue.backoff.ms"])
        // The library loaded here takes every default: a consumer configured with them starts.
        let config = KafkaConsumer.withStreamingDefaults(KafkaConfig(bootstrapServers: "127.0.0.1:1"))
        let consumer = try KafkaConsumer(config: config, groupId: "defaults-\(UInt32.random(in: 0...UInt32.max))", topics: ["t"])
        try? consumer.close()
    }

    func testConfigRedactsSecrets() {
        var c = KafkaConfig(bootstrapServers: "b:9092")
        c.setSASL(mechanism: "PLAIN", username: "alice", password: "hunter2")
        c["ssl.key.password"] = "s3cret"
        c["sasl.oauthbearer.client.secret"] = "xyz"
        let d = c.description
        XCTAssertFalse(d.contains("hunter2"))
        XCTAssertFalse(d.contains("s3cret"))
        XCTAssertFalse(d.contains("xyz"))
        XCTAssertTrue(d.contains("alice"))
        XCTAssertTrue(d.contains("bootstrap.servers=b:9092"))
    }

    func testInvalidPropertyIsTypedErrorWithoutSecret() {
        let c = KafkaConfig(bootstrapServers: "127.0.0.1:1", properties: ["no.such.property": "1"])
        do {
            _ = try KafkaProducer(config: c)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.code, KafkaError.Code.invalidArgument)
            XCTAssertTrue(error.message.contains("no.such.property"), error.description)
        }
        let s = KafkaConfig(bootstrapServers: "127.0.0.1:1", properties: ["sasl.password": "topsecret", "linger.ms": "not-a-number"])
        do {
            _ = try KafkaProducer(config: s)
            XCTFail("expected an error")
        } catch {
            XCTAssertFalse(error.description.contains("topsecret"))
        }
    }

    /// Vectors from Apache Kafka's UtilsTest.testMurmur2.
    func testMurmur2MatchesJavaVectors() {
        let cases: [(String, Int32)] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ]
        for (s, expected) in cases {
            let h = bytes(s).withUnsafeBytes { Murmur2.hash($0) }
            XCTAssertEqual(Int32(bitPattern: h), expected, s)
        }
        XCTAssertEqual(KafkaProducer.partition(forKey: bytes("foobar"), partitionCount: 7),
                       Int32((UInt32(bitPattern: -790_332_482) & 0x7fff_ffff) % 7))
        // Power-of-two counts take a mask instead of the division: the same partitions.
        for (s, expected) in cases {
            for count: Int32 in [1, 2, 4, 8, 16, 3, 6, 12] {
                XCTAssertEqual(KafkaProducer.partition(forKey: bytes(s), partitionCount: count),
                               Int32((UInt32(bitPattern: expected) & 0x7fff_ffff) % UInt32(count)), "\(s) / \(count)")
            }
        }
    }

    func testErrorDescriptionNamesContext() {
        let e = KafkaError(code: KafkaError.Code.timedOut, message: "timed out",
                           isRetriable: KafkaError.isTransient(KafkaError.Code.timedOut), context: "create topic freshet-dlq")
        XCTAssertEqual(e.name, "_TIMED_OUT")
        XCTAssertTrue(e.isRetriable)
        XCTAssertFalse(e.isFatal)
        XCTAssertTrue(e.description.contains("create topic freshet-dlq"))
    }

    /// With nothing to drain the queue (no broker), produce retries for
    /// `queueFullTimeoutMs`, then throws a retriable _QUEUE_FULL.
    func testQueueFullIsBoundedAndRetriable() throws {
        let config = KafkaConfig(bootstrapServers: "127.0.0.1:1",
                                 properties: ["queue.buffering.max.messages": "3", "log_level": "0"])
        let producer = try KafkaProducer(config: config)
        producer.queueFullTimeoutMs = 200
        var thrown: KafkaError? = nil
        let start = Date()
        for i in 0..<10 {
            do {
                try producer.produce(topic: "t", partition: 0, key: nil, value: bytes("v\(i)"))
            } catch {
                thrown = error
                break
            }
        }
        XCTAssertEqual(thrown?.code, KafkaError.Code.queueFull)
        XCTAssertEqual(thrown?.isRetriable, true)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertGreaterThanOrEqual(elapsed, 0.19)
        XCTAssertLessThan(elapsed, 5)
        XCTAssertEqual(producer.outstanding, 3)
    }
}
