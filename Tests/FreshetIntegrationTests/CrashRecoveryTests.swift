import Foundation
import FreshetCore
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import FreshetWorkload
import XCTest

/// SIGKILL the processor at random points (before it joined, while it
/// restores, mid-stream, right as a checkpoint lands), restart it each time in
/// the same group, then let a bounded run finish: every feature in Redis must
/// equal the oracle's exactly (the exactly-once effect of DESIGN.md).
final class CrashRecoveryTests: XCTestCase {
    func testKillNineAtRandomPointsStillConvergesExactly() throws {
        try runKillScenario(randomKeys: false, seed: 0xC0FFEE)
    }

    /// The same with producers that do not key by user: user features are
    /// computed by "users" tasks behind a second repartition topic.
    func testKillNineWithUnkeyedInputStillConvergesExactly() throws {
        try runKillScenario(randomKeys: true, seed: 0xBEEF)
    }

    func runKillScenario(randomKeys: Bool, seed defaultSeed: UInt64) throws {
        let started = Date()
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let events = EndToEndTests.stream(seed: 2024, events: 30_000)
        let produced = try EndToEndTests.produce(events, to: cluster, randomKeys: randomKeys)
        let oracle = FeatureOracle(events: produced)
        let total = produced.count
        XCTAssertGreaterThan(oracle.deadLetters, 50)
        // Small flush interval and frequent checkpoints: many writes and
        // checkpoints in flight at any moment a kill may land.
        // Feast rows on in the keyed scenario: they share the fenced write path and must converge too.
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: """
            sources:
              keyed_by_user: \(!randomKeys)
            feast:
              enabled: \(!randomKeys)
            redis:
              flush_interval: 20ms
              flush_max_keys: 512
            """)
        // writeTopology sets `checkpoint: interval: 1s`; checkpoint twice as often.
        try Self.rewrite(topology, replacing: "interval: 1s", with: "interval: 500ms")
        let redis = try RedisConnection(url: cluster.redisURL)
        let group = "crash"
        // FRESHET_CRASH_SEED picks other kill timings (the stream stays the same).
        let seed = ProcessInfo.processInfo.environment["FRESHET_CRASH_SEED"].flatMap { UInt64($0) } ?? defaultSeed
        var random = SplitMix64(seed: seed)
        func uniform(_ range: ClosedRange<Double>) -> Double {
            range.lowerBound + Double(random.next() % 1_000_000) / 1_000_000 * (range.upperBound - range.lowerBound)
        }

        // Each run replays from the last checkpoint and the whole stream takes
        // about a second or two to process, so kills are timed from the moment
        // the run took its first task over. Right before each mid-stream kill the
        // test scrapes /metrics to prove the run had consumed records, and after
        // it reads the checkpoints to prove input was left over.
        let kills = 8
        var midStreamKills = 0
        var killsAfterItemCheckpoints = 0
        var checkpointsAtKills: [Int] = []
        var history: [String] = []
        for round in 0..<kills {
            let log = "\(cluster.directory)/freshet-crash-\(round).log"
            let adminPort = try LocalCluster.freePort()
            let before = try Self.checkpointedProgress(redis, group: group, includingItems: true)
            let itemsBefore = try Self.checkpointedProgress(redis, group: group, stages: ["items"])
            let run = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers,
                                               "--redis", cluster.redisURL, "--group", group, "--stop-at-end",
                                               "--admin-port=\(adminPort)"], logPath: log)
            let mode: String
            if round == 0 {
                // Very early: before the process has even joined the group.
                mode = "early"
                usleep(UInt32(uniform(0.02...0.4) * 1_000_000))
            } else {
                // Round 3 kills while the assignment is still restoring tasks: only
                // the log shows a task taken mid-callback (/tasks is published
                // once the whole assignment is done).
                XCTAssertTrue(round == 3 ? Self.waitForLog(log, containing: "task assigned", timeout: 60, while: run)
                                         : Self.waitForOwnership(port: adminPort, while: run, timeout: 60),
                              "round \(round): no task assigned:\n\(run.logTail())")
                switch round {
                case 3:
                    // While taking tasks over: restore of the other tasks in progress.
                    mode = "restore"
                case 6:
                    // As the source stage ends: final markers going out, item stage still busy.
                    mode = "at the end of a source partition"
                    _ = Self.waitForLog(log, containing: "partition reached its end", timeout: 60, while: run)
                    usleep(UInt32(uniform(0...0.05) * 1_000_000))
                case 2, 5:
                    // Right as a checkpoint lands (round 2: an item task's; round 5: any
                    // task's): the other tasks' checkpoint scripts may still be in flight.
                    let stages = round == 2 ? ["items"] : ["interactions", "impressions", "items", "users"]
                    mode = "at \(round == 2 ? "item " : "")checkpoint"
                    let previous = try Self.checkpointStamps(redis, group: group, stages: stages)
                    let deadline = Date().addingTimeInterval(20)
                    while run.isRunning, Date() < deadline, try Self.checkpointStamps(redis, group: group, stages: stages) == previous {
                        usleep(1_000)
                    }
                default:
                    // Mid-stream: once this run has consumed records (scraped from
                    // /metrics), after a further random delay. Runs that restored
                    // checkpoints have little left to do, so the delay stays short.
                    let delay = round == 1 ? uniform(0.05...0.5) : round == 4 ? uniform(0.02...0.15) : uniform(0...0.1)
                    mode = "\(Int(delay * 1000)) ms after consuming"
                    Self.waitForConsumption(port: adminPort, while: run, timeout: 30)
                    usleep(UInt32(delay * 1_000_000))
                }
            }
            let consumed = round == 3 || round == 0 ? nil
                : (try? HTTPGet.get(port: adminPort, path: "/metrics", timeout: 1)).map {
                    PrometheusText($0.body).sum("freshet_records_consumed_total")
                }
            // A late round may find its (restored, nearly finished) bounded run
            // already done: that is a clean finish, not a kill, and is not
            // counted as one (the counts below still demand enough real kills).
            let wasRunning = run.isRunning
            if wasRunning { run.signal(SIGKILL) }
            let status = try run.wait(timeout: 10)
            if wasRunning {
                XCTAssertTrue(status == 128 + SIGKILL || status == 0, "round \(round) (\(mode)): killed by SIGKILL, or finished just before: \(status)")
            } else {
                XCTAssertEqual(status, 0, "round \(round) (\(mode)): finished by itself before the kill, cleanly:\n\(run.logTail())")
            }
            let killed = wasRunning && status != 0
            let after = try Self.checkpointedProgress(redis, group: group, includingItems: true)
            XCTAssertGreaterThanOrEqual(after, before, "checkpointed progress never goes backwards")
            if killed { checkpointsAtKills.append(after) }
            if killed, let consumed, consumed > 0 { midStreamKills += 1 }
            if killed, itemsBefore > 0 { killsAfterItemCheckpoints += 1 }
            history.append("round \(round) (\(mode))\(killed ? "" : " finished before the kill"): consumed \(consumed.map { String(Int($0)) } ?? "-") records in this run; checkpointed \(before) -> \(after) (items \(itemsBefore) before)")
        }
        print("CrashRecoveryTests kills (seed \(seed)):\n" + history.joined(separator: "\n"))
        XCTAssertGreaterThanOrEqual(midStreamKills, 3, "kills must land mid-stream:\n\(history.joined(separator: "\n"))")
        XCTAssertGreaterThanOrEqual(killsAfterItemCheckpoints, 2,
                                    "some runs must restore item tasks from a checkpoint and be killed again:\n\(history.joined(separator: "\n"))")

        let final = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                             "--group", group, "--stop-at-end", "--admin-port=-1"],
                                            logPath: "\(cluster.directory)/freshet-final.log")
        let status = try final.wait(timeout: 240)
        XCTAssertEqual(status, 0, "the final run exits 0:\n\(final.logTail())")
        XCTAssertEqual(try Self.checkpointedProgress(redis, group: group), total, "the final checkpoint covers the whole input")
        let finalProgress = try Self.checkpointedProgress(redis, group: group, includingItems: true)
        for (round, progress) in checkpointsAtKills.enumerated() {
            XCTAssertLessThan(progress, finalProgress, "round \(round): input was left to process after the kill")
        }
        try EndToEndTests.assertRedisMatches(oracle, redis: redis)
        if !randomKeys { try FeastEndToEndTests.assertFeastRowsMatch(oracle, redis: redis) }
        // Exactly one dead letter per bad record, however many kills replayed
        // it (the recorded dead-letter floor): none lost, none sent twice.
        let letters = try EndToEndTests.readTopic("freshet-dlq", brokers: cluster.brokers)
        let origins = letters.map(Self.deadLetterOrigin)
        let duplicated = Dictionary(grouping: origins, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
        XCTAssertEqual(duplicated, [], "bad records dead-lettered more than once")
        XCTAssertEqual(Set(origins).count, oracle.deadLetters, "one dead letter for each bad record")
        XCTAssertEqual(letters.count, oracle.deadLetters, "no other dead letters")
        print("CrashRecoveryTests (random keys: \(randomKeys)) took \(Int(Date().timeIntervalSince(started))) s")
    }

    // MARK: - Helpers

    /// `topic/partition/offset` of the bad record a dead letter is about (its headers).
    static func deadLetterOrigin(_ letter: ConsumedRecord) -> String {
        func header(_ name: String) -> String {
            letter.headers.first { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) } ?? "?"
        }
        return "\(header("freshet.source.topic"))/\(header("freshet.source.partition"))/\(header("freshet.source.offset"))"
    }

    static func rewrite(_ path: String, replacing old: String, with new: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Source records covered by the source tasks' checkpoints (sum of next offsets; topics start at 0).
    /// With `includingItems`, the item tasks' repartition offsets are added too.
    static func checkpointedProgress(_ redis: RedisConnection, group: String, includingItems: Bool = false,
                                     stages: [String]? = nil, partitions: Int32 = EndToEndTests.partitions) throws -> Int {
        var sum = 0
        for stage in stages ?? (["interactions", "impressions"] + (includingItems ? ["items", "users"] : [])) {
            for p in 0..<partitions {
                let fields = try redis.hgetall("freshet:\(group):ckpt:\(stage)-\(p):meta")
                if let next = fields.first(where: { $0.field == "next_offset" }).flatMap({ Int(String(decoding: $0.value, as: UTF8.self)) }) {
                    sum += next
                }
            }
        }
        return sum
    }

    /// The `written_ms` of every task's checkpoint meta: changes when any checkpoint lands.
    static func checkpointStamps(_ redis: RedisConnection, group: String, stages: [String],
                                 partitions: Int32 = EndToEndTests.partitions) throws -> [String] {
        var stamps: [String] = []
        for stage in stages {
            for p in 0..<partitions {
                let reply = try redis.command(["HGET", "freshet:\(group):ckpt:\(stage)-\(p):meta", "written_ms"])
                stamps.append(reply.string ?? "")
            }
        }
        return stamps
    }

    /// Waits until the run's /metrics shows consumed records (or it exits, or time runs out).
    static func waitForConsumption(port: Int, while process: ChildProcess, timeout: TimeInterval) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            if let response = try? HTTPGet.get(port: port, path: "/metrics", timeout: 1),
               PrometheusText(response.body).sum("freshet_records_consumed_total") > 0 { return }
            usleep(10_000)
        }
    }

    static func countUsers(_ redis: RedisConnection) throws -> Int {
        try EndToEndTests.countKeys(redis, pattern: "user:*", withField: "interaction_count")
    }

    /// Waits until the run's `/tasks` lists an owned task (true), or it exits or time runs out (false).
    static func waitForOwnership(port: Int, while process: ChildProcess, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            if let snapshot = try? AdminTasks.fetch(port: port, timeout: 1), !snapshot.tasks.isEmpty { return true }
            usleep(5_000)
        }
        return false
    }

    /// Waits until the log contains `text` (true) or the process exits or time runs out (false).
    @discardableResult
    static func waitForLog(_ path: String, containing text: String, timeout: TimeInterval, while process: ChildProcess) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            if let log = try? String(contentsOfFile: path, encoding: .utf8), log.contains(text) { return true }
            usleep(5_000)
        }
        return false
    }
}
