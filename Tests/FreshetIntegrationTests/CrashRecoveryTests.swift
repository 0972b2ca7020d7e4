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
        let started = Date()
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let events = EndToEndTests.stream(seed: 2024, events: 24_000)
        let produced = try EndToEndTests.produce(events, to: cluster, randomKeys: false)
        let oracle = FeatureOracle(events: produced)
        let total = produced.count
        // Small flush interval and frequent checkpoints: many writes and
        // checkpoints in flight at any moment a kill may land.
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: """
            redis:
              flush_interval: 20ms
              flush_max_keys: 512
            """)
        // writeTopology sets `checkpoint: interval: 1s`; checkpoint twice as often.
        try Self.rewrite(topology, replacing: "interval: 1s", with: "interval: 500ms")
        let redis = try RedisConnection(url: cluster.redisURL)
        let group = "crash"
        var random = SplitMixForTests(seed: 0xC0FFEE)
        func uniform(_ range: ClosedRange<Double>) -> Double {
            range.lowerBound + Double(random.next() % 1_000_000) / 1_000_000 * (range.upperBound - range.lowerBound)
        }

        let kills = 6
        var midStreamKills = 0
        var previousProgress = 0
        var history: [String] = []
        for round in 0..<kills {
            let log = "\(cluster.directory)/freshet-crash-\(round).log"
            let run = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers,
                                               "--redis", cluster.redisURL, "--group", group, "--stop-at-end",
                                               "--admin-port=-1"], logPath: log)
            let mode: String
            switch round {
            case 0:
                // Very early: before the process has even joined the group.
                mode = "early"
                usleep(UInt32(uniform(0.02...0.4) * 1_000_000))
            case 3:
                // While taking tasks over: just after the first task was assigned (restore in progress).
                mode = "restore"
                _ = Self.waitForLog(log, containing: "task assigned", timeout: 60, while: run)
            default:
                // Mid-stream: once the checkpointed progress passes a random target
                // (so some but not all input is done), either right as a checkpoint
                // lands (other tasks' checkpoint writes may still be in flight) or
                // after a further random delay.
                let fraction = 0.08 + 0.14 * Double(round) + uniform(0...0.08)
                let target = max(previousProgress + 1, Int(Double(total) * fraction))
                let atCheckpoint = random.next() % 2 == 0
                mode = atCheckpoint ? "at checkpoint, target \(target)" : "random delay, target \(target)"
                let deadline = Date().addingTimeInterval(90)
                while run.isRunning, Date() < deadline, try Self.checkpointedProgress(redis, group: group) < target {
                    usleep(5_000)
                }
                if !atCheckpoint { usleep(UInt32(uniform(0...0.3) * 1_000_000)) }
            }
            XCTAssertTrue(run.isRunning, "round \(round) (\(mode)): the process must still be running when killed:\n\(run.logTail())")
            run.signal(SIGKILL)
            let status = try run.wait(timeout: 10)
            XCTAssertEqual(status, 128 + SIGKILL, "round \(round) (\(mode)): killed by SIGKILL")
            let progress = try Self.checkpointedProgress(redis, group: group)
            XCTAssertGreaterThanOrEqual(progress, previousProgress, "checkpointed progress never goes backwards")
            XCTAssertLessThan(progress, total, "round \(round) (\(mode)): killed before the input was done")
            if progress > previousProgress && progress < total { midStreamKills += 1 }
            history.append("round \(round) (\(mode)): checkpointed \(previousProgress) -> \(progress) of \(total), \(try Self.countUsers(redis)) user hashes")
            previousProgress = progress
        }
        print("CrashRecoveryTests kills:\n" + history.joined(separator: "\n"))
        XCTAssertGreaterThanOrEqual(midStreamKills, 3, "kills must land mid-stream:\n\(history.joined(separator: "\n"))")

        let final = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                             "--group", group, "--stop-at-end", "--admin-port=-1"],
                                            logPath: "\(cluster.directory)/freshet-final.log")
        let status = try final.wait(timeout: 240)
        XCTAssertEqual(status, 0, "the final run exits 0:\n\(final.logTail())")
        XCTAssertEqual(try Self.checkpointedProgress(redis, group: group), total, "the final checkpoint covers the whole input")
        try EndToEndTests.assertRedisMatches(oracle, redis: redis)
        // Dead letters may be sent twice by a replay (documented), never lost.
        XCTAssertGreaterThanOrEqual(try EndToEndTests.countRecords(topic: "freshet-dlq", brokers: cluster.brokers), oracle.deadLetters)
        print("CrashRecoveryTests took \(Int(Date().timeIntervalSince(started))) s")
    }

    // MARK: - Helpers

    static func rewrite(_ path: String, replacing old: String, with new: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Source records covered by the source tasks' checkpoints (sum of next offsets; topics start at 0).
    static func checkpointedProgress(_ redis: RedisConnection, group: String, partitions: Int32 = EndToEndTests.partitions) throws -> Int {
        var sum = 0
        for stage in ["interactions", "impressions"] {
            for p in 0..<partitions {
                let fields = try redis.hgetall("freshet:\(group):ckpt:\(stage)-\(p):meta")
                if let next = fields.first(where: { $0.field == "next_offset" }).flatMap({ Int(String(decoding: $0.value, as: UTF8.self)) }) {
                    sum += next
                }
            }
        }
        return sum
    }

    static func countUsers(_ redis: RedisConnection) throws -> Int {
        try EndToEndTests.countKeys(redis, pattern: "user:*")
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
