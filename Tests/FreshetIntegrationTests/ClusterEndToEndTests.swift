import Foundation
import FreshetCore
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import XCTest

/// `freshet run` against a real Redis Cluster (three masters, one replica
/// each, on loopback): the features equal the oracle's exactly after a master
/// is killed mid-run (its replica fails over) and after SIGKILLs of the
/// processor, and the operator sees the failover on /readyz.
final class ClusterEndToEndTests: XCTestCase {
    typealias F = FaultInjection
    typealias T = AdminTasks

    /// Checkpoint keys on a cluster are hash-tagged by task (`RedisKeys.hashTagged`).
    static func meta(_ group: String, _ task: String) -> String { "freshet:{\(group):\(task)}:ckpt:meta" }

    /// Source records covered by the source tasks' checkpoints (as CrashRecoveryTests.checkpointedProgress).
    static func checkpointedProgress(_ store: any FeatureStoreReading, group: String, includingItems: Bool = false) throws -> Int {
        var sum = 0
        for stage in ["interactions", "impressions"] + (includingItems ? ["items"] : []) {
            for p in 0..<EndToEndTests.partitions {
                let reply = try store.command(["HGET", meta(group, "\(stage)-\(p)"), "next_offset"])
                sum += reply.string.flatMap { Int($0) } ?? 0
            }
        }
        return sum
    }

    /// `freshet_records_consumed_total` from the admin server (0 when it does not answer).
    static func consumed(_ port: Int) -> Double {
        (try? HTTPGet.get(port: port, path: "/metrics", timeout: 1)).map { PrometheusText($0.body).sum("freshet_records_consumed_total") } ?? 0
    }

    static func start(_ services: LocalCluster, _ redis: LocalRedisCluster, topology: String, group: String, name: String,
                      bounded: Bool, adminPort: Int = -1) throws -> ChildProcess {
        var arguments = ["run", "--topology", topology, "--brokers", services.brokers, "--redis", redis.url,
                         "--group", group, "--admin-port=\(adminPort)"]
        if bounded { arguments.append("--stop-at-end") }
        return try FreshetBinary.start(arguments, logPath: "\(services.directory)/\(name).log")
    }

    /// A broker (and a single Redis, unused) with the source topics created.
    /// On the shared two-core machine a fresh test broker now and then never
    /// answers `CreateTopics` (librdkafka: "ApiVersionRequest failed: Read
    /// underflow", then "Failed while waiting for controller"); a new broker
    /// does, so this starts another one rather than fail the test on it.
    static func startServices() throws -> LocalCluster {
        var attempt = 0
        while true {
            let services = try LocalCluster()
            do {
                let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: services.brokers))
                try admin.createTopics([NewTopic(name: "interactions", partitions: EndToEndTests.partitions),
                                        NewTopic(name: "impressions", partitions: EndToEndTests.partitions)], timeoutMs: 15_000)
                return services
            } catch {
                services.stop()
                attempt += 1
                guard attempt < 3 else { throw error }
                print("ClusterEndToEndTests: the test broker did not create the topics (\(error)); starting another")
            }
        }
    }

    /// The final bounded run (it only mops up), then the exact comparison, Feast rows included.
    static func finishAndCompare(_ services: LocalCluster, _ redis: LocalRedisCluster, topology: String, group: String,
                                 oracle: FeatureOracle, file: StaticString = #filePath, line: UInt = #line) throws {
        let final = try start(services, redis, topology: topology, group: group, name: "final", bounded: true)
        let status = try final.wait(timeout: 120)
        XCTAssertEqual(status, 0, "bounded run exited with \(status):\n\(final.logTail())", file: file, line: line)
        let store = try ClusterStoreReader(url: redis.url)
        try EndToEndTests.assertRedisMatches(oracle, redis: store, file: file, line: line)
        try FeastEndToEndTests.assertFeastRowsMatch(oracle, redis: store, file: file, line: line)
    }

    /// Hourly panes, no idleness (processes pause on purpose), Feast rows on,
    /// frequent flushes and checkpoints so that a kill lands among writes.
    static let topologyExtra = """
        event_time:
          idle_timeout: 10m
        feast:
          enabled: true
        redis:
          flush_interval: 20ms
          flush_max_keys: 512
        """

    /// (a) + (c) + a zombie: a run processes the first third of the stream,
    /// then the master holding `trending` (written by every item task) is
    /// SIGKILLed while the second third arrives. The processor pauses
    /// (/readyz says why) and resumes by itself once the replica took over.
    /// Then the run is frozen (SIGSTOP) while the last third arrives, a second
    /// instance takes its tasks over, and the thawed zombie's writes are
    /// refused. After a final bounded run the features equal the oracle's exactly.
    func testMasterFailoverAndAZombieMidRunStayExact() throws {
        let started = Date()
        // The Redis Cluster first: its nodes' bus ports (port + 10,000) are then never the broker's.
        let redis = try LocalRedisCluster(nodeTimeoutMs: 2000)
        defer { redis.stop() }
        let services = try Self.startServices()
        defer { services.stop() }
        let events = EndToEndTests.stream(seed: 31, events: 6_000)
        let third = events.count / 3
        var produced = try EndToEndTests.produce(Array(events[..<third]), to: services, randomKeys: false)
        let topology = try EndToEndTests.writeTopology(in: services.directory, extra: Self.topologyExtra)
        let group = "failover"
        let store = try ClusterStoreReader(url: redis.url)
        let adminPort = try LocalCluster.freePort()
        let run = try Self.start(services, redis, topology: topology, group: group, name: "run", bounded: false, adminPort: adminPort)
        defer { if run.isRunning { run.signal(SIGKILL) } }
        let firstHalf = produced.count
        XCTAssertTrue(F.waitUntil(timeout: 90) { run.isRunning && (try? Self.checkpointedProgress(store, group: group)) == firstHalf },
                      "the first half is processed and checkpointed:\n\(run.logTail())")

        let slot = ClusterSlot.of(Array("trending".utf8))
        try store.client.refreshTopology()
        let victim = try XCTUnwrap(store.client.topology.owners[slot])
        try redis.kill(port: victim.port)
        let killedAt = Date()
        produced += try EndToEndTests.produce(Array(events[third..<(2 * third)]), to: services, randomKeys: false)

        // What the operator sees: /readyz turns 503 with the reason, then 200 again by itself.
        var notReady: String?
        XCTAssertTrue(F.waitUntil(timeout: 30, every: 0.05) {
            guard let response = try? HTTPGet.get(port: adminPort, path: "/readyz", timeout: 1), response.status == 503,
                  response.body.contains("redis") else { return false }
            notReady = response.body
            return true
        }, "/readyz reports the failover:\n\(run.logTail())")
        XCTAssertTrue(F.waitUntil(timeout: 60, every: 0.1) {
            (try? HTTPGet.get(port: adminPort, path: "/readyz", timeout: 1))?.status == 200
        }, "ready again once the replica took over:\n\(run.logTail())")
        let recovered = Date().timeIntervalSince(killedAt)
        try store.client.refreshTopology()
        let promoted = try XCTUnwrap(store.client.topology.owners[slot])
        XCTAssertNotEqual(promoted, victim, "the replica was promoted")
        let twoThirds = produced.count
        XCTAssertTrue(F.waitUntil(timeout: 60) { (try? Self.checkpointedProgress(store, group: group)) == twoThirds },
                      "the processor resumed by itself and checkpointed the whole stream:\n\(run.logTail())")
        XCTAssertTrue(run.isRunning, "the failover never stopped the processor:\n\(run.logTail())")
        let log = F.log(run.logPath)
        XCTAssertTrue(log.contains("run_id changed"), "the failover is noticed and every task's checkpoint checked")
        XCTAssertFalse(log.contains("CHECKPOINT STORE LOST"), "no acknowledged checkpoint was lost (writes wait for the replica)")
        print("ClusterEndToEndTests failover: /readyz said \"\(notReady?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "-")\"; ready again \(String(format: "%.1f", recovered)) s after the kill")

        // A zombie on the cluster: `run` is frozen (SIGSTOP) with the last third
        // arriving, `b` takes every task over once run's session expired and
        // processes it, then `run` is thawed: its writes must be refused.
        let all = Set(ScalingTests.allTasks)
        let oldEpochs = try T.waitUntil(port: adminPort, timeout: 30, "run owns every task") { $0.owned == all }.epochs
        // Freeze it as soon as it consumes the last third, so that it holds unwritten changes.
        let consumedBefore = Self.consumed(adminPort)
        let pid = run.pid
        let freezer = Thread {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline && Self.consumed(adminPort) <= consumedBefore { usleep(1_000) }
            kill(pid, SIGSTOP)
        }
        freezer.start()
        produced += try EndToEndTests.produce(Array(events[(2 * third)...]), to: services, randomKeys: false)
        XCTAssertTrue(F.waitUntil(timeout: 40) { freezer.isFinished }, "run frozen")
        let portB = try LocalCluster.freePort()
        let b = try Self.start(services, redis, topology: topology, group: group, name: "b", bounded: false, adminPort: portB)
        defer { if b.isRunning { b.signal(SIGKILL) } }
        defer { if run.isRunning { run.signal(SIGCONT) } }
        let bEpochs = try T.waitUntil(port: portB, timeout: 60, "b takes every task over from the frozen run") { $0.owned == all }.epochs
        let total = produced.count
        XCTAssertTrue(F.waitUntil(timeout: 60) { (try? Self.checkpointedProgress(store, group: group)) == total },
                      "b processes the last third:\n\(b.logTail())")
        run.signal(SIGCONT)
        // Its endpoint shows the snapshot from before the freeze until its
        // processing thread runs again and drops the tasks (fenced or lost).
        try T.waitUntil(port: adminPort, timeout: 60, "the thawed run holds no task under its stale epoch") { snapshot in
            !snapshot.tasks.contains { oldEpochs[$0.task] == $0.epoch }
        }
        // b's epoch, or run's own newer one if it rejoined and legitimately took
        // the task back (published just after it is written to Redis, so an
        // epoch not yet shown is looked for again); never the zombie's.
        var stale: [String] = []
        var unowned: [String] = []
        _ = try? T.waitUntil(ports: [adminPort, portB], timeout: 20, "every task's epoch and checkpoint to belong to a current owner") { snapshots in
            unowned = []
            for task in ScalingTests.allTasks {
                let epoch = (try? store.command(["GET", "freshet:{\(group):\(task)}:epoch"]))?.string.flatMap { Int64($0) }
                let metaEpoch = (try? store.command(["HGET", Self.meta(group, task), "epoch"]))?.string.flatMap { Int64($0) }
                if epoch == oldEpochs[task] || metaEpoch == oldEpochs[task] {
                    stale.append("\(task): epoch \(String(describing: epoch)), checkpoint at epoch \(String(describing: metaEpoch))")
                }
                let owners = Set([bEpochs[task], snapshots[0].epochs[task], snapshots[1].epochs[task]].compactMap { $0 }
                    .filter { $0 > (oldEpochs[task] ?? .max) })
                if !(epoch.map { owners.contains($0) } ?? false) || !(metaEpoch.map { owners.contains($0) } ?? false) {
                    unowned.append("\(task): epoch \(String(describing: epoch)), checkpoint at epoch \(String(describing: metaEpoch)), "
                        + "the zombie's was \(oldEpochs[task] ?? -1), owners \(owners)")
                }
            }
            return !stale.isEmpty || unowned.isEmpty
        }
        XCTAssertEqual(stale, [], "the zombie's stale epoch reached the cluster")
        XCTAssertEqual(unowned, [], "epochs and checkpoints not written by a current owner")
        print("ClusterEndToEndTests zombie: run logged \(F.lines(run.logPath, containing: "task fenced").count) fenced task(s), \(F.lines(run.logPath, containing: "lost=true").count) lost")
        try T.waitUntil(ports: [adminPort, portB], timeout: 60, "the thawed run rejoins the group and owns tasks, every task once") {
            !$0[0].owned.isEmpty && T.partition($0, covers: all)
        }
        try ScalingTests.scaleIn(run, survivors: [portB])
        try ScalingTests.scaleIn(b, survivors: [])
        let oracle = FeatureOracle(events: produced)
        try Self.finishAndCompare(services, redis, topology: topology, group: group, oracle: oracle)

        // `freshet features` reads a cluster too.
        let (user, expected) = try XCTUnwrap(oracle.users.min { $0.key < $1.key })
        let output = "\(services.directory)/features.out"
        let features = try FreshetBinary.start(["features", "user", user, "--redis", redis.url], logPath: output)
        XCTAssertEqual(try features.wait(timeout: 60), 0, features.logTail())
        let text = F.log(output)
        let json = try XCTUnwrap(text.firstIndex(of: "{").map { String(text[$0...]) }, text)
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        XCTAssertEqual((object?["interaction_count"] as? NSNumber)?.int64Value, Int64(expected.count), text)
        XCTAssertEqual(object?["recent_items_50"] as? [String], expected.recent, text)
        print("ClusterEndToEndTests failover took \(Int(Date().timeIntervalSince(started))) s")
    }

    /// (b): bounded runs SIGKILLed mid-stream, each restarting from the
    /// checkpoints in the cluster; the final run's features equal the oracle's.
    func testKillNineMidRunConvergesExactly() throws {
        let started = Date()
        // The Redis Cluster first: its nodes' bus ports (port + 10,000) are then never the broker's.
        let redis = try LocalRedisCluster(nodeTimeoutMs: 2000)
        defer { redis.stop() }
        let services = try Self.startServices()
        defer { services.stop() }
        let events = EndToEndTests.stream(seed: 2025, events: 8_000)
        let produced = try EndToEndTests.produce(events, to: services, randomKeys: false)
        let oracle = FeatureOracle(events: produced)
        let topology = try EndToEndTests.writeTopology(in: services.directory, extra: Self.topologyExtra)
        try CrashRecoveryTests.rewrite(topology, replacing: "interval: 1s", with: "interval: 300ms")
        let group = "crash"
        let store = try ClusterStoreReader(url: redis.url)
        var random = SplitMix64(seed: 5)
        var progressAtKills: [Int] = []
        var history: [String] = []
        for round in 0..<2 {
            let before = try Self.checkpointedProgress(store, group: group, includingItems: true)
            let run = try Self.start(services, redis, topology: topology, group: group, name: "crash-\(round)", bounded: true)
            // Kill once this run's own checkpoints landed (it restored and went on), after a further random delay.
            XCTAssertTrue(F.waitUntil(timeout: 60, every: 0.005) {
                !run.isRunning || (try? Self.checkpointedProgress(store, group: group, includingItems: true)).map { $0 > before } ?? false
            }, "round \(round): a checkpoint lands:\n\(run.logTail())")
            usleep(UInt32(random.next() % 150_000))
            let wasRunning = run.isRunning
            run.signal(SIGKILL)
            _ = try run.wait(timeout: 10)
            let after = try Self.checkpointedProgress(store, group: group, includingItems: true)
            XCTAssertGreaterThan(after, before, "round \(round): the run checkpointed progress before the kill")
            XCTAssertTrue(wasRunning, "round \(round): the run was still going when killed:\n\(run.logTail())")
            progressAtKills.append(after)
            history.append("round \(round): running at the kill \(wasRunning), checkpointed (sources + items) \(before) -> \(after)")
        }
        print("ClusterEndToEndTests kills:\n" + history.joined(separator: "\n"))
        try Self.finishAndCompare(services, redis, topology: topology, group: group, oracle: oracle)
        XCTAssertEqual(try Self.checkpointedProgress(store, group: group), produced.count, "the final checkpoint covers the whole input")
        let finalProgress = try Self.checkpointedProgress(store, group: group, includingItems: true)
        for (round, progress) in progressAtKills.enumerated() {
            XCTAssertLessThan(progress, finalProgress, "round \(round): input was left to process after the kill")
        }
        print("ClusterEndToEndTests crash took \(Int(Date().timeIntervalSince(started))) s")
    }
}
