import FreshetCore
import FreshetFeatures
@testable import FreshetRuntime
import XCTest

/// Crash and restore of whole pipelines in process (`TaskDriver`): the same
/// exactness the kill -9 integration tests check against the broker and
/// Redis, in milliseconds.
final class TaskDriverTests: XCTestCase {
    let base: Int64 = 1_767_225_600_000  // 2026-01-01T00:00Z
    let users = (0..<20).map { "u\($0)" }
    let items = (0..<30).map { "i\($0)" }

    /// A deterministic stream: interactions on two partitions (keyed by user),
    /// impressions on one, event times rising one second per event (nothing late), and a bad record.
    func events(_ count: Int) -> [(TaskId.Stage, Int32, [UInt8])] {
        var state: UInt64 = 42
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let actions = ["click", "like", "share", "skip"]
        return (0..<count).map { n in
            let ts = base + Int64(n) * 1_000
            let userIndex = next(users.count)
            let user = users[userIndex]
            if n == count / 3 { return (.interactions, 0, Array("not json".utf8)) }
            if n % 3 == 2 {
                let shown = (0..<3).map { _ in "\"\(items[next(items.count)])\"" }.joined(separator: ",")
                return (.impressions, 0, Array(#"{"user_id":"\#(user)","items_shown":[\#(shown)],"ts":\#(ts)}"#.utf8))
            }
            let item = items[next(items.count)]
            let action = actions[next(actions.count)]
            // Keyed by user, as the topology says: each user's interactions on one partition.
            return (.interactions, Int32(userIndex % 2),
                    Array(#"{"user_id":"\#(user)","item_id":"\#(item)","action":"\#(action)","ts":\#(ts)}"#.utf8))
        }
    }

    func driver(keyedByUser: Bool = true) -> TaskDriver {
        var topology = Topology()
        topology.sources.keyedByUser = keyedByUser
        return TaskDriver(topology: topology, interactionPartitions: 2, impressionPartitions: 1,
                          repartitionPartitions: 3, nowMs: base + 3_600_000 * 24)
    }

    func run(_ driver: TaskDriver, _ stream: ArraySlice<(TaskId.Stage, Int32, [UInt8])>) {
        for (stage, partition, value) in stream { driver.send(stage, partition: partition, value) }
        driver.runUntilQuiet()
    }

    func assertSameFeatures(_ a: TaskDriver, _ b: TaskDriver, file: StaticString = #filePath, line: UInt = #line) {
        for item in items {
            // Trending is a floating-point sum: another admission order (the
            // crashed run's repartition logs interleave differently) moves the last bit.
            var (x, y) = (a.itemFeatures(item), b.itemFeatures(item))
            XCTAssertEqual(x?.trendingLog2Score ?? 0, y?.trendingLog2Score ?? 0, accuracy: 1e-9, "item \(item)", file: file, line: line)
            x?.trendingLog2Score = nil
            y?.trendingLog2Score = nil
            XCTAssertEqual(x, y, "item \(item)", file: file, line: line)
        }
        for user in users {
            XCTAssertEqual(a.userFeatures(user), b.userFeatures(user), "user \(user)", file: file, line: line)
        }
    }

    func crashMidRunConvergesToTheCleanRun(keyedByUser: Bool) throws {
        let stream = events(900)
        let clean = driver(keyedByUser: keyedByUser)
        run(clean, stream[...])
        clean.finishSources()

        let crashed = driver(keyedByUser: keyedByUser)
        run(crashed, stream[..<300])
        try crashed.checkpoint()
        run(crashed, stream[300..<450])
        // Tasks checkpoint on their own (a revoke checkpoints only the revoked
        // ones): the repartition-fed tasks are now ahead of the sources.
        try crashed.checkpoint { !$0.stage.readsSourceTopic }
        // Every task dies: sources replay from their older checkpoint and re-send
        // what they had routed; the repartition-fed tasks' restored duplicate
        // filters drop those copies (nothing after their checkpoint in their logs
        // would rebuild the filters first).
        try crashed.crashAll()
        run(crashed, stream[450..<600])
        try crashed.checkpoint()
        run(crashed, stream[600..<700])
        // And again, past the checkpoint of every task.
        try crashed.crashAll()
        run(crashed, stream[700...])
        crashed.finishSources()

        XCTAssertNotNil(clean.itemFeatures("i1"))
        XCTAssertGreaterThan(clean.itemFeatures("i1")?.popularity7d ?? 0, 0)
        assertSameFeatures(clean, crashed)
        XCTAssertEqual(clean.deadLetters.count, 1)
        XCTAssertEqual(crashed.deadLetters.map(\.record.offset), [clean.deadLetters[0].record.offset, clean.deadLetters[0].record.offset],
                       "the replay dead-letters the bad record again (the engine skips it through the dead-letter floor)")
    }

    func testACrashAfterACheckpointConvergesToTheCleanRun() throws {
        try crashMidRunConvergesToTheCleanRun(keyedByUser: true)
    }

    func testACrashWithUnkeyedInputConvergesToTheCleanRun() throws {
        try crashMidRunConvergesToTheCleanRun(keyedByUser: false)
    }

    func testACrashBeforeAnyCheckpointReplaysFromTheStart() throws {
        let stream = events(200)
        let clean = driver()
        run(clean, stream[...])
        let crashed = driver()
        run(crashed, stream[..<150])
        try crashed.crashAll()
        run(crashed, stream[150...])
        assertSameFeatures(clean, crashed)
    }
}
