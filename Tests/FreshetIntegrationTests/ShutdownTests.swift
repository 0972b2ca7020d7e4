import Foundation
import FreshetCore
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import FreshetWorkload
import XCTest

/// An operable process: SIGTERM stops it cleanly (flush, checkpoint, commit,
/// leave, exit 0) and promptly, a second signal stops it at once, and the
/// admin endpoints tell operators what it is doing without leaking secrets.
final class ShutdownTests: XCTestCase {
    /// SIGTERM while processing: exit 0 within 10 s; a bounded run in the same
    /// group then finishes the stream from the checkpoint, and the features
    /// equal the oracle's (nothing lost, nothing doubled); no dead letter is
    /// sent twice either, since a graceful stop leaves nothing to replay.
    func testSigtermFlushesCheckpointsCommitsAndExitsZeroWithinTenSeconds() throws {
        let started = Date()
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let produced = try EndToEndTests.produce(EndToEndTests.stream(seed: 77, events: 20_000), to: cluster, randomKeys: false)
        let oracle = FeatureOracle(events: produced)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory)
        let redis = try RedisConnection(url: cluster.redisURL)
        let adminPort = try LocalCluster.freePort()

        let run = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                           "--group", "term", "--admin-port=\(adminPort)"],
                                          logPath: "\(cluster.directory)/freshet-unbounded.log")
        CrashRecoveryTests.waitForConsumption(port: adminPort, while: run, timeout: 60)
        XCTAssertTrue(run.isRunning, "processing:\n\(run.logTail())")
        let signalled = Date()
        run.signal(SIGTERM)
        let status = try run.wait(timeout: 30)
        let stopSeconds = Date().timeIntervalSince(signalled)
        XCTAssertEqual(status, 0, "SIGTERM exits 0:\n\(run.logTail())")
        XCTAssertLessThan(stopSeconds, 10, "SIGTERM exits within 10 s")
        let log = (try? String(contentsOfFile: run.logPath, encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("stopped"), "the processor logged its stop:\n\(run.logTail())")
        let checkpointed = try CrashRecoveryTests.checkpointedProgress(redis, group: "term")
        XCTAssertGreaterThan(checkpointed, 0, "the graceful stop checkpointed the source tasks")

        let bounded = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                               "--group", "term", "--stop-at-end", "--admin-port=-1"],
                                              logPath: "\(cluster.directory)/freshet-bounded.log")
        XCTAssertEqual(try bounded.wait(timeout: 240), 0, "the bounded run exits 0:\n\(bounded.logTail())")
        let boundedLog = (try? String(contentsOfFile: bounded.logPath, encoding: .utf8)) ?? ""
        XCTAssertNotNil(boundedLog.range(of: #"offset=[0-9]+ restored_entries=[1-9][0-9]* task=interactions"#, options: .regularExpression),
                        "the bounded run restored source tasks from the graceful stop's checkpoints:\n\(boundedLog.prefix(3000))")
        try EndToEndTests.assertRedisMatches(oracle, redis: redis)
        XCTAssertEqual(try EndToEndTests.countRecords(topic: "freshet-dlq", brokers: cluster.brokers), oracle.deadLetters,
                       "a graceful stop leaves nothing to replay: every dead letter exactly once")
        print("SIGTERM stopped the processor in \(String(format: "%.2f", stopSeconds)) s; test took \(Int(Date().timeIntervalSince(started))) s")
    }

    /// A graceful stop that cannot finish (Redis paused with SIGSTOP, so the
    /// final flush and checkpoint wait for it): a second signal exits at once.
    /// Once Redis is back, a bounded run converges from the last checkpoint.
    func testSecondSignalExitsAtOnceWhenTheGracefulStopIsStuck() throws {
        let started = Date()
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let produced = try EndToEndTests.produce(EndToEndTests.stream(seed: 78, events: 30_000), to: cluster, randomKeys: false)
        let oracle = FeatureOracle(events: produced)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory)
        let adminPort = try LocalCluster.freePort()
        let run = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                           "--group", "twice", "--admin-port=\(adminPort)"],
                                          logPath: "\(cluster.directory)/freshet-twice.log")
        CrashRecoveryTests.waitForConsumption(port: adminPort, while: run, timeout: 60)
        XCTAssertTrue(run.isRunning, "processing:\n\(run.logTail())")
        // It consumes, so it has joined: /readyz must not say otherwise (and must
        // not hide the outage below behind a stale "not yet joined").
        let consuming = try HTTPGet.get(port: adminPort, path: "/readyz")
        XCTAssertFalse(consuming.body.contains("not yet joined"), "consuming instance reported as not joined: \(consuming.body)")
        let redisPid = try XCTUnwrap(Int32((try String(contentsOfFile: "\(cluster.directory)/redis.pid", encoding: .utf8))
            .trimmingCharacters(in: .whitespacesAndNewlines)))
        kill(redisPid, SIGSTOP)
        var resumed = false
        defer { if !resumed { kill(redisPid, SIGCONT) } }
        let unready = HTTPGet.waitFor(port: adminPort, path: "/readyz", timeout: 20) { $0.status == 503 && $0.body.contains("redis") }
        XCTAssertEqual(unready?.status, 503, "/readyz reports the Redis outage: \(unready?.body ?? "no answer")")
        XCTAssertTrue(unready?.body.contains("redis") ?? false, unready?.body ?? "")

        run.signal(SIGTERM)
        usleep(1_500_000)
        XCTAssertTrue(run.isRunning, "the graceful stop waits for Redis to acknowledge the final flush and checkpoint")
        let signalled = Date()
        run.signal(SIGTERM)
        let status = try run.wait(timeout: 10)
        let seconds = Date().timeIntervalSince(signalled)
        XCTAssertLessThan(seconds, 2, "a second signal exits at once:\n\(run.logTail())")
        XCTAssertNotEqual(status, 0, "an interrupted stop does not claim success")
        XCTAssertTrue(run.logTail().contains("second signal"), run.logTail())
        kill(redisPid, SIGCONT)
        resumed = true

        let bounded = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                               "--group", "twice", "--stop-at-end", "--admin-port=-1"],
                                              logPath: "\(cluster.directory)/freshet-bounded.log")
        XCTAssertEqual(try bounded.wait(timeout: 240), 0, "the bounded run exits 0:\n\(bounded.logTail())")
        try EndToEndTests.assertRedisMatches(oracle, redis: try RedisConnection(url: cluster.redisURL))
        print("the second signal stopped the processor in \(String(format: "%.2f", seconds)) s; test took \(Int(Date().timeIntervalSince(started))) s")
    }

    /// /healthz, /readyz and /metrics while running, with a password-protected
    /// Redis ACL user: the metrics describe consumption, lag, watermarks, dead
    /// letters, freshness, checkpoints and assignment; the password appears
    /// neither in /metrics nor in the log.
    func testAdminEndpointsServeMetricsHealthAndReadiness() throws {
        let started = Date()
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let admin = try RedisConnection(url: cluster.redisURL)
        _ = try admin.command(["ACL", "SETUSER", "freshet", "on", ">s3cret", "~*", "&*", "+@all"])
        let secretURL = "redis://freshet:s3cret@127.0.0.1:\(cluster.redisPort)"
        let produced = try EndToEndTests.produce(EndToEndTests.stream(seed: 79, events: 8_000), to: cluster, randomKeys: false)
        XCTAssertGreaterThan(produced.filter { if case .bad = $0.body { true } else { false } }.count, 10, "bad events produced")
        let topology = try EndToEndTests.writeTopology(in: cluster.directory)
        try CrashRecoveryTests.rewrite(topology, replacing: "interval: 1s", with: "interval: 300ms")
        let port = try LocalCluster.freePort()
        let run = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", secretURL,
                                           "--group", "admin", "--admin-port=\(port)", "--log-level", "debug"],
                                          logPath: "\(cluster.directory)/freshet-admin.log")
        defer { if run.isRunning { run.signal(SIGKILL); _ = try? run.wait(timeout: 5) } }

        let health = HTTPGet.waitFor(port: port, path: "/healthz", timeout: 30) { $0.status == 200 }
        XCTAssertEqual(health?.status, 200, "/healthz answers 200 while the process lives:\n\(run.logTail())")
        // The admin server starts before the group join completes (Tansu takes seconds): not ready yet.
        let early = try HTTPGet.get(port: port, path: "/readyz")
        XCTAssertEqual(early.status, 503, "not ready before joining the group: \(early.body)")
        XCTAssertTrue(early.body.contains("not yet joined"), early.body)
        let ready = HTTPGet.waitFor(port: port, path: "/readyz", timeout: 60) { $0.status == 200 }
        XCTAssertEqual(ready?.status, 200, "/readyz answers 200 once joined and restored: \(ready?.body ?? "no answer")")

        // Wait until the whole input was read, a checkpoint happened and dead letters were counted.
        var metrics = PrometheusText("")
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let response = try? HTTPGet.get(port: port, path: "/metrics") {
                text = response.body
                metrics = PrometheusText(text)
                if metrics.sum("freshet_records_consumed_total", labelsContaining: "topic=\"interactions\"")
                    + metrics.sum("freshet_records_consumed_total", labelsContaining: "topic=\"impressions\"") >= Double(produced.count),
                   metrics.sum("freshet_checkpoint_seconds_count") > 0, metrics.sum("freshet_dead_letters_total") > 0,
                   // Item tasks get a watermark once every source partition reported one (gauges refresh each second).
                   metrics.series("freshet_watermark_ms").contains(where: { $0.labels.contains("task=\"items-") }) { break }
            }
            usleep(200_000)
        }
        XCTAssertTrue(run.isRunning, "still running:\n\(run.logTail())")

        let consumed = metrics.series("freshet_records_consumed_total")
        XCTAssertTrue(consumed.contains { $0.labels.contains("topic=\"interactions\"") && $0.labels.contains("partition=\"") && $0.value > 0 },
                      "records consumed per topic and partition:\n\(consumed.map { "\($0.labels) \($0.value)" })")
        XCTAssertEqual(metrics.sum("freshet_records_consumed_total", labelsContaining: "topic=\"interactions\"")
                       + metrics.sum("freshet_records_consumed_total", labelsContaining: "topic=\"impressions\""),
                       Double(produced.count), "every source record counted once")
        XCTAssertFalse(metrics.series("freshet_consumer_lag").isEmpty, "consumer lag is exported")
        XCTAssertTrue(metrics.series("freshet_consumer_lag").allSatisfy { $0.labels.contains("topic=") && $0.labels.contains("partition=") })
        XCTAssertTrue(metrics.series("freshet_watermark_ms").contains { $0.labels.contains("task=\"items-") && $0.value > 1_000_000_000_000 },
                      "item tasks export their watermark: \(metrics.series("freshet_watermark_ms").map { "\($0.labels) \($0.value)" })")
        let deadLetters = metrics.series("freshet_dead_letters_total")
        XCTAssertTrue(deadLetters.contains { $0.labels.contains("reason=\"") && $0.value > 0 },
                      "dead letters by reason: \(deadLetters.map { "\($0.labels) \($0.value)" })")
        XCTAssertGreaterThan(metrics.sum("freshet_freshness_seconds_count"), 0, "freshness is observed")
        XCTAssertFalse(metrics.series("freshet_freshness_seconds_bucket").isEmpty, "freshness histogram buckets")
        XCTAssertGreaterThan(metrics.sum("freshet_checkpoint_seconds_count"), 0, "checkpoints are timed")
        XCTAssertEqual(metrics.sum("freshet_assigned_partitions"), Double(ScalingTests.allTasks.count),
                       "one instance owns every task (interactions, impressions, counts, items)")
        XCTAssertEqual(metrics.sum("freshet_ready"), 1)
        XCTAssertFalse(text.contains("s3cret"), "the Redis password never appears in /metrics")

        run.signal(SIGTERM)
        XCTAssertEqual(try run.wait(timeout: 15), 0, run.logTail())
        let log = (try? String(contentsOfFile: run.logPath, encoding: .utf8)) ?? ""
        XCTAssertFalse(log.contains("s3cret"), "the Redis password never appears in the log")
        XCTAssertFalse(log.isEmpty)
        // The features were written through the ACL user.
        XCTAssertGreaterThan(try EndToEndTests.countKeys(admin, pattern: "user:*", withField: "interaction_count"), 0)

        // A wrong password is reported with the endpoint, the password masked.
        let wrong = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers,
                                             "--redis", "redis://freshet:wr0ngpw@127.0.0.1:\(cluster.redisPort)",
                                             "--group", "admin-wrong", "--stop-at-end", "--admin-port=-1"],
                                            logPath: "\(cluster.directory)/freshet-wrong.log")
        XCTAssertNotEqual(try wrong.wait(timeout: 60), 0, "a wrong Redis password stops the processor")
        let wrongLog = (try? String(contentsOfFile: wrong.logPath, encoding: .utf8)) ?? ""
        XCTAssertTrue(wrongLog.contains("redis://freshet:***@"), "the endpoint is logged with the password masked:\n\(wrong.logTail())")
        XCTAssertFalse(wrongLog.contains("wr0ngpw"), "the password never appears in the log")
        print("admin endpoint test took \(Int(Date().timeIntervalSince(started))) s")
    }
}
