import Foundation
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import XCTest

/// A bounded run (real broker, Redis, `freshet run --stop-at-end`, default
/// topology with the examples' counts stage) keeps going after one source
/// partition reached its end while another is not done. A record produced to
/// the ended partition meanwhile, which the consumer still fetches, is left
/// for the next run: it used to be processed, moving that source's watermark
/// past the final one it had announced (the counts stage, already ended at
/// the announced one, then ended behind the item features).
final class BoundedEndIntegrationTests: XCTestCase {
    func testARecordProducedAfterAPartitionsEndIsLeftForTheNextRun() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "interactions", partitions: 1), NewTopic(name: "impressions", partitions: 1)])
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: "event_time:\n  idle_timeout: 1h\n")
        // Clear of an hour's first seconds: `a`'s pane must be visible at the final watermark.
        let t0 = InputFaultFixture.recentEventTime(agoMs: 600_000)
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try producer.produce(topic: "interactions", partition: 0, key: Array("u1".utf8),
                             value: Array(#"{"user_id":"u1","item_id":"a","action":"click","ts":\#(t0)}"#.utf8))
        try producer.produce(topic: "impressions", partition: 0, key: Array("u1".utf8),
                             value: Array(#"{"user_id":"u1","items_shown":["a","b"],"ts":\#(t0 + 1_000)}"#.utf8))
        try producer.flush(timeoutMs: 30_000)

        // Another member of the group holds `impressions` (it reads nothing
        // and commits nothing), so the run cannot end until it leaves.
        let group = "after-end"
        let holder = try KafkaConsumer(config: KafkaConfig(bootstrapServers: cluster.brokers), groupId: group, topics: ["impressions"])
        defer { try? holder.close() }
        func pump() { _ = try? holder.poll(maxRecords: 100, timeoutMs: 50) }
        let held = TopicPartition(topic: "impressions", partition: 0)
        let deadline = Date().addingTimeInterval(60)
        while !holder.assignment().contains(held), Date() < deadline { pump() }
        XCTAssertTrue(holder.assignment().contains(held), "the holder owns impressions-0")

        let port = try LocalCluster.freePort()
        let run = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                           "--group", group, "--stop-at-end", "--admin-port=\(port)"],
                                          logPath: "\(cluster.directory)/first.log")
        defer { run.signal(SIGKILL) }
        func snapshot() -> AdminTasks.Snapshot? {
            pump()
            return try? AdminTasks.fetch(port: port, timeout: 2)
        }
        func interactions0(_ s: AdminTasks.Snapshot?) -> AdminTasks.Task? { s?.tasks.first { $0.task == "interactions-0" } }
        // The run's interactions partition reached its end; the run waits for impressions-0.
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 90, every: 0.2) {
            guard run.isRunning else { throw TestFailure("freshet exited: " + run.logTail()) }
            return interactions0(snapshot())?.finished == true
        }, "interactions-0 ended: " + run.logTail())
        XCTAssertTrue(holder.assignment().contains(held), "the holder still owns impressions-0: the run is not done")
        let consumedBefore = interactions0(snapshot())?.recordsProcessed ?? 0

        try producer.produce(topic: "interactions", partition: 0, key: Array("u2".utf8),
                             value: Array(#"{"user_id":"u2","item_id":"late","action":"click","ts":\#(t0 + 2 * 3_600_000)}"#.utf8))
        try producer.flush(timeoutMs: 30_000)
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 60, every: 0.2) {
            guard run.isRunning else { throw TestFailure("freshet exited: " + run.logTail()) }
            return (interactions0(snapshot())?.recordsProcessed ?? 0) > consumedBefore
        }, "the run's consumer fetched the record produced after the end: " + run.logTail())

        try holder.close()
        XCTAssertEqual(try run.wait(timeout: 120), 0, run.logTail())
        let redis = try RedisConnection(url: cluster.redisURL)
        func popularity(_ item: String) throws -> String? {
            try redis.command(["HGET", "item:\(item)", "popularity_7d"]).string
        }
        XCTAssertEqual(try popularity("a"), "1")
        XCTAssertNil(try popularity("late"), "the record after the end is not in this run")
        XCTAssertNil(try redis.command(["HGET", "user:u2", "interaction_count"]).string)

        // The next bounded run reads it (its offset was not committed).
        let next = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                            "--group", group, "--stop-at-end", "--admin-port=-1"],
                                           logPath: "\(cluster.directory)/next.log")
        defer { next.signal(SIGKILL) }
        XCTAssertEqual(try next.wait(timeout: 120), 0, next.logTail())
        XCTAssertEqual(try redis.command(["HGET", "user:u2", "interaction_count"]).string, "1")
        XCTAssertEqual(try popularity("a"), "1")
    }
}
