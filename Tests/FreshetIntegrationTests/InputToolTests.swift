import Foundation
import FreshetCore
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import XCTest

/// The command line and operations around input faults (issue 8, parts 5-6):
/// replay keying, topic creation, the features reader, Ctrl-C on the embedded
/// default, revoked partitions' metrics, bounded runs with two instances.
final class InputToolTests: XCTestCase {
    /// `freshet produce --file` keys each message by the user id the decoder
    /// reads (escapes resolved, last of duplicate keys), and creates missing
    /// topics with the topology's `sources.partitions`.
    func testProduceFileKeysAsTheDecoderReadsAndCreatesTopicsFromTheTopology() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let ts = InputFaultFixture.recentEventTime()
        let lines = [
            #"{"user_id":"u1","item_id":"i1","action":"click","ts":\#(ts)}"#,
            #"{"user_id":"u\u0031","item_id":"i2","action":"click","ts":\#(ts + 1)}"#,
            #"{"user_id":"other","item_id":"i3","user_id":"u1","action":"click","ts":\#(ts + 2)}"#,
            #"{"user\u005fid":"u1","items_shown":["i1","i4"],"ts":\#(ts + 3)}"#,
        ]
        let file = "\(cluster.directory)/events.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let topology = "\(cluster.directory)/five.yaml"
        try InputFaultTests.topologyBase.replacingOccurrences(of: "partitions: 1", with: "partitions: 5")
            .write(toFile: topology, atomically: true, encoding: .utf8)
        let produce = try FreshetBinary.start(["produce", "--file", file, "--topology", topology, "--brokers", cluster.brokers],
                                              logPath: "\(cluster.directory)/produce.log")
        XCTAssertEqual(try produce.wait(timeout: 60), 0, produce.logTail())

        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        XCTAssertEqual(try admin.partitionCount(topic: "interactions"), 5, "created with sources.partitions")
        XCTAssertEqual(try admin.partitionCount(topic: "impressions"), 5)
        let expected = KafkaProducer.partition(forKey: Array("u1".utf8), partitionCount: 5)
        var records = try InputFaultFixture.readAll(topic: "interactions", brokers: cluster.brokers)
        records += try InputFaultFixture.readAll(topic: "impressions", brokers: cluster.brokers)
        XCTAssertEqual(records.count, 4)
        for record in records {
            XCTAssertEqual(record.key, Array("u1".utf8), "keyed by the decoded user id")
            XCTAssertEqual(record.partition, expected, "one user, one partition")
        }

        let status = try InputFaultFixture.boundedRun(cluster, topology: try String(contentsOfFile: topology, encoding: .utf8))
        XCTAssertEqual(status.code, 0, status.log)
        let redis = try RedisConnection(url: cluster.redisURL)
        XCTAssertEqual(try InputFaultFixture.field(redis, "user:u1", "interaction_count"), "3")
        XCTAssertEqual(try InputFaultFixture.field(redis, "item:i4", "impressions_7d"), "1")
    }

    /// A breaker's input: a replay with a 1,040,000-byte event (more than
    /// librdkafka's client default of 1,000,000) stopped at it with the
    /// broker blamed and never delivered the lines queued before it. The
    /// broker's limit now decides; an event nothing takes is named, and the
    /// events before it are delivered.
    func testProduceFileSendsLargeEventsAndNamesOneItCannotSend() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let ts = InputFaultFixture.recentEventTime()
        let click = { (user: String) in #"{"user_id":"\#(user)","item_id":"i1","action":"click","ts":\#(ts)}"# }
        let large = #"{"user_id":"big","item_id":"i1","action":"click","ts":\#(ts),"request_id":""# + String(repeating: "r", count: 1_040_000) + #""}"#
        let file = "\(cluster.directory)/large.jsonl"
        try ([click("a"), large, click("b")].joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let topology = "\(cluster.directory)/one.yaml"
        try InputFaultTests.topologyBase.write(toFile: topology, atomically: true, encoding: .utf8)
        let produce = try FreshetBinary.start(["produce", "--file", file, "--topology", topology, "--brokers", cluster.brokers],
                                              logPath: "\(cluster.directory)/produce.log")
        XCTAssertEqual(try produce.wait(timeout: 60), 0, produce.logTail())
        let records = try InputFaultFixture.readAll(topic: "interactions", brokers: cluster.brokers)
        XCTAssertEqual(records.map(\.value.count), [click("a"), large, click("b")].map(\.utf8.count), "all three, in order")

        // Beyond any limit (librdkafka's own maximum, 1,000,000,000 bytes, is not needed: 65 MiB is past the client's).
        let huge = "\(cluster.directory)/huge.jsonl"
        try ([click("c"), click("d"), String(repeating: "x", count: 65 << 20)].joined(separator: "\n") + "\n")
            .write(toFile: huge, atomically: true, encoding: .utf8)
        let failing = try FreshetBinary.start(["produce", "--file", huge, "--topology", topology, "--brokers", cluster.brokers],
                                              logPath: "\(cluster.directory)/produce-huge.log")
        XCTAssertEqual(try failing.wait(timeout: 60), 1, failing.logTail())
        XCTAssertTrue(failing.logTail().contains("event 3 ("), failing.logTail())
        XCTAssertTrue(failing.logTail().contains("the 2 events before it were delivered"), failing.logTail())
        XCTAssertEqual(try InputFaultFixture.readAll(topic: "interactions", brokers: cluster.brokers).count, 5)
    }

    /// `freshet features user ID` renders `embedding_<n>d` as floats and every
    /// other field (`embedding_kind` among them) as what it is.
    func testFeaturesUserRendersEmbeddingKindAsText() throws {
        let cluster = try LocalCluster(withBroker: false)
        defer { cluster.stop() }
        let redis = try RedisConnection(url: cluster.redisURL)
        let one = Float(1).bitPattern, half = Float(0.5).bitPattern
        let blob = [one, half].flatMap { bits in (0..<4).map { UInt8(truncatingIfNeeded: bits >> (8 * $0)) } }
        _ = try redis.command([Array("HSET".utf8), Array("user:u1".utf8), Array("embedding_kind".utf8), Array("pseudo".utf8),
                               Array("embedding_2d".utf8), blob, Array("interaction_count".utf8), Array("3".utf8)])
        let log = "\(cluster.directory)/features.out"
        let run = try FreshetBinary.start(["features", "user", "u1", "--redis", cluster.redisURL], logPath: log)
        XCTAssertEqual(try run.wait(timeout: 30), 0, run.logTail())
        let text = try String(contentsOfFile: log, encoding: .utf8)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
        XCTAssertEqual(object["embedding_kind"] as? String, "pseudo")
        XCTAssertEqual(object["embedding_2d"] as? [Double], [1, 0.5])
        XCTAssertEqual(object["interaction_count"] as? Int, 3)
    }

    /// Ctrl-C (SIGINT to the whole foreground process group, as a terminal
    /// sends it) on the embedded default: Freshet stops its producer and
    /// processor while the local broker and Redis are still up, then stops them.
    func testCtrlCOnTheEmbeddedDefaultStopsTheLocalServicesLast() throws {
        let directory = NSTemporaryDirectory() + "freshet-embedded-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let brokerPort = try LocalCluster.freePort(), redisPort = try LocalCluster.freePort()
        let log = "\(directory)/run.log"
        // setsid: a process group of its own, like a shell job, so the group can be signalled.
        let run = try ChildProcess("/usr/bin/setsid", [FreshetBinary.path, "run", "--group", "embedded", "--admin-port=-1",
                                                       "--demo-rate", "500"],
                                   logPath: log, environment: ["FRESHET_LOCAL_DIR": directory,
                                                               "FRESHET_LOCAL_BROKER_PORT": "\(brokerPort)",
                                                               "FRESHET_LOCAL_REDIS_PORT": "\(redisPort)"])
        defer {
            kill(-run.pid, SIGKILL)
            // The local services record their pids (they have process groups of their own).
            try? LocalCluster.killPidFile("\(directory)/tansu.pid")
            try? LocalCluster.killPidFile("\(directory)/redis.pid")
        }
        let deadline = Date().addingTimeInterval(90)
        var consumed = false
        while Date() < deadline && !consumed {
            usleep(500_000)
            if let redis = try? RedisConnection(url: "redis://127.0.0.1:\(redisPort)"),
               let reply = try? redis.command(["ZCARD", "trending"]), (reply.int ?? 0) > 0 { consumed = true }
        }
        XCTAssertTrue(consumed, "the embedded default produced and processed events:\n\(run.logTail())")
        kill(-run.pid, SIGINT)
        XCTAssertEqual(try run.wait(timeout: 60), 0, run.logTail())
        let text = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertTrue(text.contains("stopped"), "a graceful stop:\n\(run.logTail())")
        let errors = text.split(separator: "\n").filter {
            $0.contains("Connection refused") || $0.contains("redis write failed") || $0.contains("demo producer stopped")
                || $0.contains(" error ") || $0.contains(" critical ") || $0.contains("kafka: ")
        }
        XCTAssertEqual(errors.count, 0, "no connection errors while stopping:\n\(errors.prefix(10).joined(separator: "\n"))")
        XCTAssertFalse(LoopbackPort.isListening(brokerPort), "the local broker is stopped at exit")
        XCTAssertFalse(LoopbackPort.isListening(redisPort), "the local Redis is stopped at exit")
    }

    /// Partitions revoked by a rebalance leave no metric series behind: lag
    /// and records-consumed series match the partitions still owned.
    func testRevokedPartitionsLoseTheirMetricSeries() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try InputFaultFixture.createTopics(cluster, partitions: 2)
        let producer = try InputFaultFixture.bigProducer(cluster)
        let ts = InputFaultFixture.recentEventTime()
        for k in 0..<40 {
            let user = "u\(k)"
            let event = #"{"user_id":"\#(user)","item_id":"i\#(k % 7)","action":"click","ts":\#(ts + Int64(k))}"#
            try producer.produce(topic: "interactions", partition: Int32(k % 2), key: Array(user.utf8), value: Array(event.utf8))
            let impression = #"{"user_id":"\#(user)","items_shown":["i1"],"ts":\#(ts + Int64(k))}"#
            try producer.produce(topic: "impressions", partition: Int32(k % 2), key: Array(user.utf8), value: Array(impression.utf8))
        }
        try producer.flush(timeoutMs: 30_000)
        let topology = "\(cluster.directory)/scale.yaml"
        try InputFaultTests.topologyBase.write(toFile: topology, atomically: true, encoding: .utf8)
        let portA = try LocalCluster.freePort()
        let arguments = ["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL, "--group", "scale"]
        let a = try FreshetBinary.start(arguments + ["--admin-port", "\(portA)"], logPath: "\(cluster.directory)/a.log")
        defer { a.signal(SIGKILL); _ = try? a.wait(timeout: 10) }
        let all = HTTPGet.waitFor(port: portA, path: "/metrics", timeout: 90) { response in
            let m = PrometheusText(response.body)
            return m.sum("freshet_assigned_partitions") == 6 && m.series("freshet_consumer_lag").count == 6
        }
        XCTAssertEqual(all.map { PrometheusText($0.body).series("freshet_consumer_lag").count }, 6, a.logTail())

        let b = try FreshetBinary.start(arguments + ["--admin-port=-1"], logPath: "\(cluster.directory)/b.log")
        defer { b.signal(SIGKILL); _ = try? b.wait(timeout: 10) }
        let shared = HTTPGet.waitFor(port: portA, path: "/metrics", timeout: 120) { response in
            let m = PrometheusText(response.body)
            let owned = m.sum("freshet_assigned_partitions")
            return owned > 0 && owned < 6 && m.series("freshet_consumer_lag").count == Int(owned)
                && m.series("freshet_records_consumed_total").count <= Int(owned)
        }
        let metrics = PrometheusText(shared?.body ?? "")
        let owned = Int(metrics.sum("freshet_assigned_partitions"))
        XCTAssertLessThan(owned, 6, "the second instance took partitions over:\n\(b.logTail())")
        XCTAssertEqual(metrics.series("freshet_consumer_lag").count, owned, "lag series only for owned partitions")
        XCTAssertLessThanOrEqual(metrics.series("freshet_records_consumed_total").count, owned)
        XCTAssertLessThanOrEqual(metrics.series("freshet_watermark_ms").count, owned)
    }

    /// A bounded run with two instances in one group: both finish, exit 0,
    /// and the features equal the oracle's, exactly.
    func testBoundedRunWithTwoInstancesInOneGroup() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let events = EndToEndTests.stream(seed: 8, events: 4_000)
        let produced = try EndToEndTests.produce(events, to: cluster, randomKeys: false)
        let oracle = FeatureOracle(events: produced)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: "embeddings:\n  enabled: false\n")
        let arguments = ["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                         "--group", "two", "--stop-at-end", "--admin-port=-1"]
        let a = try FreshetBinary.start(arguments, logPath: "\(cluster.directory)/a.log")
        let b = try FreshetBinary.start(arguments, logPath: "\(cluster.directory)/b.log")
        XCTAssertEqual(try a.wait(timeout: 240), 0, a.logTail())
        XCTAssertEqual(try b.wait(timeout: 240), 0, b.logTail())
        let redis = try RedisConnection(url: cluster.redisURL)
        try EndToEndTests.assertRedisMatches(oracle, redis: redis)
    }
}
