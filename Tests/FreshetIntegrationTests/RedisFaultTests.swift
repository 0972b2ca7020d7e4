import Foundation
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import XCTest

/// Redis faults injected through the server itself (CONFIG SET maxmemory, a
/// wrong-type key, a restart without persistence, requirepass): nothing is
/// lost, nothing is committed past unwritten effects, and the features end
/// exact. One partition per topic and a handful of events, so each fault is
/// easy to read.
final class RedisFaultTests: XCTestCase {
    typealias F = FaultInjection

    // MARK: - Helpers

    /// The empty impressions partition must not hold the item watermark back
    /// for long: otherwise windowed counts read as of an old watermark.
    static let topologyExtra = "event_time:\n  idle_timeout: 1s\n"

    static func createTopics(_ cluster: LocalCluster) throws {
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "interactions", partitions: 1), NewTopic(name: "impressions", partitions: 1)])
    }

    /// Produces click events (user, item) with the current time and waits for delivery.
    static func produceClicks(_ clicks: [(user: String, item: String)], to cluster: LocalCluster) throws {
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers))
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for (index, click) in clicks.enumerated() {
            let json = #"{"user_id":"\#(click.user)","item_id":"\#(click.item)","action":"click","ts":\#(now + Int64(index))}"#
            try producer.produce(topic: "interactions", partition: 0, key: Array(click.user.utf8), value: Array(json.utf8))
        }
        try producer.flush(timeoutMs: 30_000)
        guard producer.deliveryFailures == 0 else { throw TestFailure("\(producer.deliveryFailures) clicks not delivered") }
    }

    /// One record that is not JSON, to `interactions` partition 0: a dead letter.
    static func produceBadRecord(to cluster: LocalCluster) throws {
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try producer.produce(topic: "interactions", partition: 0, key: Array("u1".utf8), value: Array(#"{"user_id":"u1","item_"#.utf8))
        try producer.flush(timeoutMs: 30_000)
        guard producer.deliveryFailures == 0 else { throw TestFailure("the bad record was not delivered") }
    }

    static func start(_ cluster: LocalCluster, topology: String, group: String, name: String,
                      adminPort: Int? = nil, bounded: Bool = false) throws -> ChildProcess {
        var arguments = ["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                         "--group", group, "--admin-port=\(adminPort ?? -1)"]
        if bounded { arguments.append("--stop-at-end") }
        return try FreshetBinary.start(arguments, logPath: "\(cluster.directory)/\(name).log")
    }

    /// The features the store-loss test checks, for failure messages.
    static func snapshot(_ redis: RedisConnection) -> String {
        let users = ["u1", "u2"].map { "\($0)=\(field(redis, "user:\($0)", "interaction_count") ?? "nil")" }
        let items = ["i1", "i3", "i4"].map { "\($0)=\(field(redis, "item:\($0)", "popularity_7d") ?? "nil")" }
        return (users + items).joined(separator: " ")
    }

    static func readyz(_ port: Int) -> (status: Int, body: String)? { F.httpGet(port: port, path: "/readyz") }

    static func metric(_ port: Int, _ name: String) -> Double {
        guard let response = try? HTTPGet.get(port: port, path: "/metrics", timeout: 2) else { return 0 }
        return PrometheusText(response.body).sum(name)
    }

    static func field(_ redis: RedisConnection, _ key: String, _ field: String) -> String? {
        try? redis.command(["HGET", key, field]).string
    }

    func waitReady(_ port: Int, _ process: ChildProcess, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(F.waitUntil(timeout: 60) { Self.readyz(port)?.status == 200 },
                      "ready: \(String(describing: Self.readyz(port)))\n\(process.logTail())", file: file, line: line)
    }

    /// Topics, a topology, `key` set to the plain string `value` in Redis,
    /// and a processor of `group` started and ready.
    func startWithForeignString(_ cluster: LocalCluster, key: String, value: String, group: String) throws
        -> (topology: String, redis: RedisConnection, adminPort: Int, run: ChildProcess) {
        try Self.createTopics(cluster)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: Self.topologyExtra)
        let redis = try RedisConnection(url: cluster.redisURL)
        _ = try redis.command(["SET", key, value])
        let adminPort = try LocalCluster.freePort()
        let run = try Self.start(cluster, topology: topology, group: group, name: group, adminPort: adminPort)
        waitReady(adminPort, run)
        return (topology, redis, adminPort, run)
    }

    // MARK: - Redis refuses writes

    /// Input A of issue 8: Redis at maxmemory 1 refuses every write with OOM;
    /// three clicks for u1; SIGTERM; heal Redis; a bounded run in the same
    /// group. The refusal pauses (readiness says so), the stopped run exits
    /// non-zero without committing, and the bounded run writes count 3.
    func testOutOfMemoryPausesAndNothingIsCommittedPastTheRefusedWrites() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try Self.createTopics(cluster)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: Self.topologyExtra)
        let redis = try RedisConnection(url: cluster.redisURL)
        let adminPort = try LocalCluster.freePort()
        let run = try Self.start(cluster, topology: topology, group: "oom", name: "oom-unbounded", adminPort: adminPort)
        defer { if run.isRunning { run.signal(SIGKILL) } }
        waitReady(adminPort, run)

        _ = try redis.command(["CONFIG", "SET", "maxmemory", "1"])
        try Self.produceClicks([("u1", "i1"), ("u1", "i2"), ("u1", "i3")], to: cluster)
        XCTAssertTrue(F.waitUntil(timeout: 30) {
            guard let reply = Self.readyz(adminPort) else { return false }
            return reply.status == 503 && reply.body.contains("redis refuses writes (OOM)")
        }, "/readyz reports the refusal: \(String(describing: Self.readyz(adminPort)))\n\(run.logTail())")
        XCTAssertTrue(run.isRunning, "a refusal pauses, it does not crash:\n\(run.logTail())")
        XCTAssertGreaterThanOrEqual(Self.metric(adminPort, "freshet_records_consumed_total"), 3, "the three clicks were read")

        run.signal(SIGTERM)
        let status = try run.wait(timeout: 60)
        XCTAssertNotEqual(status, 0, "stopped while writes are refused: exit non-zero\n\(run.logTail())")
        XCTAssertFalse(F.lines(run.logPath, containing: "no further checkpoint or offset commit").isEmpty,
                       "the log says nothing was committed past the refused writes:\n\(run.logTail())")

        _ = try redis.command(["CONFIG", "SET", "maxmemory", "0"])
        XCTAssertNil(Self.field(redis, "user:u1", "interaction_count"), "nothing was written during the refusal")
        let bounded = try Self.start(cluster, topology: topology, group: "oom", name: "oom-bounded", bounded: true)
        XCTAssertEqual(try bounded.wait(timeout: 120), 0, "the bounded run after healing exits 0:\n\(bounded.logTail())")
        XCTAssertEqual(Self.field(redis, "user:u1", "interaction_count"), "3")
        XCTAssertEqual(Self.field(redis, "user:u1", "recent_items_50"), #"["i3","i2","i1"]"#)
    }

    /// A primary turned read-only replica (REPLICAOF an unreachable primary,
    /// as during a failover): writes are refused with READONLY, the processor
    /// pauses and says so, and resumes by itself once the node is a primary
    /// again, with exact features.
    func testReadOnlyReplicaPausesAndResumes() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try Self.createTopics(cluster)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: Self.topologyExtra)
        let redis = try RedisConnection(url: cluster.redisURL)
        let adminPort = try LocalCluster.freePort()
        let run = try Self.start(cluster, topology: topology, group: "readonly", name: "readonly", adminPort: adminPort)
        defer { if run.isRunning { run.signal(SIGKILL) } }
        waitReady(adminPort, run)

        let nowhere = try LocalCluster.freePort()
        _ = try redis.command(["REPLICAOF", "127.0.0.1", "\(nowhere)"])
        try Self.produceClicks([("u1", "i1"), ("u1", "i2")], to: cluster)
        XCTAssertTrue(F.waitUntil(timeout: 30) {
            guard let reply = Self.readyz(adminPort) else { return false }
            return reply.status == 503 && reply.body.contains("redis refuses writes (READONLY)")
        }, "/readyz reports the refusal: \(String(describing: Self.readyz(adminPort)))\n\(run.logTail())")
        XCTAssertNil(Self.field(redis, "user:u1", "interaction_count"))

        _ = try redis.command(["REPLICAOF", "NO", "ONE"])
        XCTAssertTrue(F.waitUntil(timeout: 60) {
            Self.field(redis, "user:u1", "interaction_count") == "2" && Self.readyz(adminPort)?.status == 200
        }, "resumed by itself: \(String(describing: Self.readyz(adminPort)))\n\(run.logTail())")
        XCTAssertEqual(Self.field(redis, "user:u1", "recent_items_50"), #"["i2","i1"]"#)
        XCTAssertTrue(F.waitUntil(timeout: 30) { Self.field(redis, "item:i2", "popularity_7d") == "1" })
        XCTAssertEqual(Self.field(redis, "item:i1", "popularity_7d"), "1")
        try ScalingTests.stopGracefully(run)
    }

    /// Shutdown while the Redis writer is in its READONLY back-off, and right
    /// after it recovered, repeated: each stop must end the process cleanly
    /// (no abort at exit: a run once died of `malloc_consolidate(): invalid
    /// chunk size` right after "stopped"), a stop during the refusal exits
    /// non-zero without committing, and a bounded run afterwards writes the
    /// exact features of every click. Rounds alternate between the two cases.
    func testStopDuringReadOnlyRetriesRepeatedlyExitsCleanlyAndLosesNothing() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try Self.createTopics(cluster)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: Self.topologyExtra)
        let redis = try RedisConnection(url: cluster.redisURL)
        defer { _ = try? redis.command(["REPLICAOF", "NO", "ONE"]) }
        let rounds = 6
        var items: [String] = []
        for round in 0..<rounds {
            let adminPort = try LocalCluster.freePort()
            let run = try Self.start(cluster, topology: topology, group: "readonly-stops", name: "readonly-stop-\(round)",
                                     adminPort: adminPort)
            defer { if run.isRunning { run.signal(SIGKILL) } }
            waitReady(adminPort, run)
            let nowhere = try LocalCluster.freePort()
            _ = try redis.command(["REPLICAOF", "127.0.0.1", "\(nowhere)"])
            items.append("i\(round)")
            try Self.produceClicks([("u1", "i\(round)")], to: cluster)
            XCTAssertTrue(F.waitUntil(timeout: 30) {
                Self.readyz(adminPort)?.body.contains("redis refuses writes (READONLY)") ?? false
            }, "round \(round): the writer retries the refused writes\n\(run.logTail())")
            let healFirst = round % 2 == 1
            if healFirst {
                _ = try redis.command(["REPLICAOF", "NO", "ONE"])
                XCTAssertTrue(F.waitUntil(timeout: 60) {
                    Self.field(redis, "user:u1", "interaction_count") == "\(round + 1)" && Self.readyz(adminPort)?.status == 200
                }, "round \(round): resumed by itself\n\(run.logTail())")
            }
            run.signal(SIGTERM)
            let status = try run.wait(timeout: 60)
            let log = (try? String(contentsOfFile: run.logPath, encoding: .utf8)) ?? ""
            for sign in ["malloc", "Program crashed", "Fatal error", "double free", "corrupted"] {
                XCTAssertFalse(log.contains(sign), "round \(round): \(sign) in the log:\n\(run.logTail())")
            }
            XCTAssertTrue(log.contains("stopped"), "round \(round): the processor logged its stop:\n\(run.logTail())")
            if healFirst {
                XCTAssertEqual(status, 0, "round \(round): a stop after the recovery exits 0:\n\(run.logTail())")
            } else {
                XCTAssertEqual(status, 1, "round \(round): a stop during the refusal exits 1 (nothing committed past it):\n\(run.logTail())")
                _ = try redis.command(["REPLICAOF", "NO", "ONE"])
            }
        }
        let bounded = try Self.start(cluster, topology: topology, group: "readonly-stops", name: "readonly-stops-bounded", bounded: true)
        XCTAssertEqual(try bounded.wait(timeout: 120), 0, "the bounded run exits 0:\n\(bounded.logTail())")
        XCTAssertEqual(Self.field(redis, "user:u1", "interaction_count"), "\(rounds)")
        XCTAssertEqual(Self.field(redis, "user:u1", "recent_items_50"),
                       "[" + items.reversed().map { "\"\($0)\"" }.joined(separator: ",") + "]")
        for item in items {
            XCTAssertEqual(Self.field(redis, "item:\(item)", "popularity_7d"), "1", item)
        }
    }

    /// Input B of issue 8: `item:legacy` is a plain string; clicks on legacy
    /// and good1. The wrong-type key is skipped, logged with its key and
    /// counted; good1, trending and the checkpoint land. A bounded run that
    /// ends with a key still refused exits non-zero; once the key is deleted,
    /// the next run writes the refused item in full.
    func testAWrongTypeKeyIsIsolatedAndReported() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let (topology, redis, adminPort, run) = try startWithForeignString(cluster, key: "item:legacy", value: "kept", group: "wrongtype")
        defer { if run.isRunning { run.signal(SIGKILL) } }

        try Self.produceClicks([("u1", "legacy"), ("u2", "good1")], to: cluster)
        XCTAssertTrue(F.waitUntil(timeout: 30) {
            Self.field(redis, "freshet:wrongtype:ckpt:interactions-0:meta", "next_offset") == "2"
                && Self.metric(adminPort, "freshet_redis_rejected_keys_total") >= 1
        }, "the checkpoint proceeds past the batch with the bad key, which is counted:\n\(run.logTail())")
        XCTAssertTrue(F.waitUntil(timeout: 30) { Self.field(redis, "item:good1", "popularity_7d") == "1" },
                      "good1 written:\n\(run.logTail())")
        XCTAssertEqual(Self.field(redis, "item:good1", "popularity_7d"), "1")
        XCTAssertNotNil(try redis.command(["ZSCORE", "trending", "good1"]).string, "good1 is in trending")
        XCTAssertEqual(try redis.command(["GET", "item:legacy"]).string, "kept", "the wrong-type key is left alone")
        let rejected = F.lines(run.logPath, containing: "redis rejected a key")
        XCTAssertTrue(rejected.contains { $0.contains("key=item:legacy") && $0.contains("reason=WRONGTYPE") },
                      "the bad key is logged with its key and reason:\n\(run.logTail())")
        XCTAssertEqual(Self.readyz(adminPort)?.status, 200, "one bad key does not make the instance unready")
        XCTAssertEqual(Self.field(redis, "user:u1", "interaction_count"), "1", "the user side of the legacy click landed")
        try ScalingTests.stopGracefully(run)

        // A bounded run that meets a rejected key finishes, commits, and exits non-zero.
        try Self.produceClicks([("u3", "legacy"), ("u3", "good1")], to: cluster)
        let bounded = try Self.start(cluster, topology: topology, group: "wrongtype", name: "wrongtype-bounded", bounded: true)
        XCTAssertEqual(try bounded.wait(timeout: 120), 1, "rejected keys fail a bounded run:\n\(bounded.logTail())")
        XCTAssertEqual(Self.field(redis, "item:good1", "popularity_7d"), "2")
        XCTAssertEqual(Self.field(redis, "user:u3", "interaction_count"), "2")
        XCTAssertFalse(F.lines(bounded.logPath, containing: "Redis still refuses 1 key").isEmpty, bounded.logTail())

        // The operator's fix (OPERATIONS.md): delete the foreign key. The next
        // bounded run has nothing to replay; the checkpoint names the refused
        // item, whose features it writes in full (before, `item:legacy`
        // stayed missing until legacy's next event).
        _ = try redis.command(["DEL", "item:legacy"])
        let rerun = try Self.start(cluster, topology: topology, group: "wrongtype", name: "wrongtype-rerun", bounded: true)
        XCTAssertEqual(try rerun.wait(timeout: 120), 0, "the refused key is written:\n\(rerun.logTail())")
        XCTAssertEqual(Self.field(redis, "item:legacy", "popularity_7d"), "2", "both clicks on legacy")
        XCTAssertEqual(Self.field(redis, "item:good1", "popularity_7d"), "2")
    }

    /// A breaker's input: `trending` is a string while clicks arrive, then
    /// the operator deletes it (OPERATIONS.md's fix for a foreign key). With
    /// no further event, the set must come back with every refused score:
    /// only changed items were written before, so refused scores stayed
    /// lost (7 of 500 members wrong at the end of the breaker's run).
    func testTrendingRefusedWhileForeignComesBackOnceTheKeyIsDeleted() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let (_, redis, adminPort, run) = try startWithForeignString(cluster, key: "trending", value: "foreign", group: "trending")
        defer { if run.isRunning { run.signal(SIGKILL) } }

        try Self.produceClicks([("u1", "a"), ("u2", "b"), ("u3", "b")], to: cluster)
        XCTAssertTrue(F.waitUntil(timeout: 30) {
            Self.field(redis, "item:b", "popularity_7d") == "2" && Self.metric(adminPort, "freshet_redis_rejected_keys_total") >= 1
        }, "the items land, the trending writes are refused:\n\(run.logTail())")
        XCTAssertEqual(try redis.command(["GET", "trending"]).string, "foreign", "the foreign key is left alone")
        XCTAssertFalse(F.lines(run.logPath, containing: "key=trending").isEmpty, run.logTail())

        _ = try redis.command(["DEL", "trending"])
        XCTAssertTrue(F.waitUntil(timeout: 30) {
            (try? redis.command(["ZREVRANGE", "trending", "0", "-1"]).array?.compactMap(\.string)) == ["b", "a"]
        }, "trending rewritten without a new event, b (two clicks) above a: "
            + "\(String(describing: try? redis.command(["ZREVRANGE", "trending", "0", "-1", "WITHSCORES"])))\n\(run.logTail())")
        try ScalingTests.stopGracefully(run)
    }

    // MARK: - A fatal error commits nothing past unfinished work

    /// Redis starts demanding a password mid-run (a non-retriable failure):
    /// the writes are abandoned, the processor stops on its own with an error
    /// and commits nothing past them; a bounded run after the fix replays the
    /// clicks and writes count 3.
    func testAFatalRedisErrorStopsWithoutCommittingPastUnwrittenEffects() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try Self.createTopics(cluster)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: Self.topologyExtra)
        let redis = try RedisConnection(url: cluster.redisURL)
        let adminPort = try LocalCluster.freePort()
        let run = try Self.start(cluster, topology: topology, group: "fatal", name: "fatal", adminPort: adminPort)
        defer { if run.isRunning { run.signal(SIGKILL) } }
        waitReady(adminPort, run)

        _ = try redis.command(["CONFIG", "SET", "requirepass", "not-configured-in-freshet"])
        _ = try redis.command(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        try Self.produceClicks([("u1", "i1"), ("u1", "i2"), ("u1", "i3")], to: cluster)
        let status = try run.wait(timeout: 60)
        XCTAssertEqual(status, 1, "a fatal Redis error stops the processor with an error:\n\(run.logTail())")
        XCTAssertFalse(F.lines(run.logPath, containing: "no further checkpoint or offset commit").isEmpty, run.logTail())

        _ = try redis.command(["CONFIG", "SET", "requirepass", ""])
        let bounded = try Self.start(cluster, topology: topology, group: "fatal", name: "fatal-bounded", bounded: true)
        XCTAssertEqual(try bounded.wait(timeout: 120), 0, bounded.logTail())
        XCTAssertEqual(Self.field(redis, "user:u1", "interaction_count"), "3")
    }

    // MARK: - The checkpoint store is lost

    /// Issue 8, part 1: an unbounded run, one click, Redis restarted without
    /// persistence, then a click by u2 on i3. The processor tells the loss
    /// from fencing, rebuilds by replay, and every feature is exact (u1's and
    /// i1's too). Then Redis loses everything again while no processor runs:
    /// a bounded run notices the committed offsets without checkpoints and
    /// rebuilds the same way. In between, FLUSHALL (same run_id) is caught by
    /// the next fenced write.
    func testRedisRestartedEmptyIsDetectedAndRebuiltToExactFeatures() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        try Self.createTopics(cluster)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: Self.topologyExtra)
        let group = "lost"
        var redis = try RedisConnection(url: cluster.redisURL)
        let adminPort = try LocalCluster.freePort()
        let run = try Self.start(cluster, topology: topology, group: group, name: "lost", adminPort: adminPort)
        defer { if run.isRunning { run.signal(SIGKILL) } }
        waitReady(adminPort, run)

        try Self.produceClicks([("u1", "i1")], to: cluster)
        // A bad record: its dead letter must not be sent again by any of the
        // rebuilds below (each used to send it once more: 4 letters).
        try Self.produceBadRecord(to: cluster)
        XCTAssertTrue(F.waitUntil(timeout: 30) {
            Self.field(redis, "freshet:\(group):ckpt:interactions-0:meta", "next_offset") == "2"
                && Self.field(redis, "freshet:\(group):ckpt:items-0:meta", "next_offset") != nil
        }, "the first click and the bad record are checkpointed:\n\(run.logTail())")

        try cluster.stopRedis()
        try cluster.startRedis()
        redis = try RedisConnection(url: cluster.redisURL)
        try Self.produceClicks([("u2", "i3")], to: cluster)

        XCTAssertTrue(F.waitUntil(timeout: 60) {
            Self.field(redis, "user:u2", "interaction_count") == "1" && Self.field(redis, "item:i3", "popularity_7d") == "1"
                && Self.field(redis, "user:u1", "interaction_count") == "1" && Self.field(redis, "item:i1", "popularity_7d") == "1"
        }, "features after the restart, old ones rebuilt:\n\(run.logTail())")
        XCTAssertTrue(run.isRunning, run.logTail())
        XCTAssertTrue(F.lines(run.logPath, containing: "task fenced").isEmpty, "a lost store is not fencing:\n\(run.logTail())")
        XCTAssertFalse(F.lines(run.logPath, containing: "CHECKPOINT STORE LOST").isEmpty, run.logTail())
        XCTAssertGreaterThan(Self.metric(adminPort, "freshet_checkpoint_store_lost_total"), 0)
        let trending = try redis.command(["ZRANGE", "trending", "0", "-1"]).array?.compactMap(\.string) ?? []
        XCTAssertEqual(Set(trending), ["i1", "i3"])
        XCTAssertTrue(F.waitUntil(timeout: 30) { Self.readyz(adminPort)?.status == 200 }, "ready again after the rebuild: \(String(describing: Self.readyz(adminPort)))\n\(run.logTail())")
        XCTAssertTrue(F.waitUntil(timeout: 30) {
            Self.field(redis, "freshet:\(group):ckpt:interactions-0:meta", "next_offset") == "3"
        }, "checkpointed again after the rebuild")

        // FLUSHALL keeps the run_id: the next fenced write finds its epoch key
        // missing, which is a lost store, not a newer owner.
        _ = try redis.command(["FLUSHALL"])
        try Self.produceClicks([("u1", "i4")], to: cluster)
        XCTAssertTrue(F.waitUntil(timeout: 60) {
            Self.field(redis, "user:u1", "interaction_count") == "2" && Self.field(redis, "item:i4", "popularity_7d") == "1"
                && Self.field(redis, "user:u2", "interaction_count") == "1" && Self.field(redis, "item:i3", "popularity_7d") == "1"
                && Self.field(redis, "item:i1", "popularity_7d") == "1"
        }, "features after FLUSHALL, old ones rebuilt: \(Self.snapshot(redis))\n\(run.logTail())")
        XCTAssertFalse(F.lines(run.logPath, containing: "a write at epoch").isEmpty, "detected by the fenced write:\n\(run.logTail())")
        XCTAssertTrue(F.lines(run.logPath, containing: "task fenced").isEmpty, "a lost store is not fencing:\n\(run.logTail())")
        XCTAssertTrue(F.waitUntil(timeout: 30) {
            Self.field(redis, "freshet:\(group):ckpt:interactions-0:meta", "next_offset") == "4"
        }, "checkpointed again after the FLUSHALL")
        // Every rebuild done (a stop during one exits 1, naming the tasks).
        XCTAssertTrue(F.waitUntil(timeout: 30) { Self.readyz(adminPort)?.status == 200 },
                      "ready again after the FLUSHALL's rebuild: \(String(describing: Self.readyz(adminPort)))\n\(run.logTail())")
        try ScalingTests.stopGracefully(run)

        // The store is lost while nothing runs: the next run sees committed
        // offsets without checkpoints, and rebuilds.
        try cluster.stopRedis()
        try cluster.startRedis()
        redis = try RedisConnection(url: cluster.redisURL)
        let bounded = try Self.start(cluster, topology: topology, group: group, name: "lost-bounded", bounded: true)
        XCTAssertEqual(try bounded.wait(timeout: 120), 0, bounded.logTail())
        XCTAssertFalse(F.lines(bounded.logPath, containing: "evidence=checkpoint_missing").isEmpty, bounded.logTail())
        XCTAssertEqual(Self.field(redis, "user:u1", "interaction_count"), "2")
        XCTAssertEqual(Self.field(redis, "user:u1", "recent_items_50"), #"["i4","i1"]"#)
        XCTAssertEqual(Self.field(redis, "user:u2", "interaction_count"), "1")
        XCTAssertEqual(Self.field(redis, "item:i1", "popularity_7d"), "1")
        XCTAssertEqual(Self.field(redis, "item:i3", "popularity_7d"), "1")
        XCTAssertEqual(Self.field(redis, "item:i4", "popularity_7d"), "1")
        XCTAssertEqual(try EndToEndTests.countRecords(topic: "freshet-dlq", brokers: cluster.brokers), 1,
                       "one dead letter for the bad record, through three rebuilds")
    }
}
