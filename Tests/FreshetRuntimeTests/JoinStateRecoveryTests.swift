import FreshetCore
import FreshetEmbeddings
@testable import FreshetRuntime
import XCTest

/// An item task that crashes (or moves to another instance) while join
/// windows are open restores them from its checkpoint: the examples equal a
/// run without the crash. Before the join's state was checkpointed
/// (`join_state`), the restored task emitted the engaged item's positive
/// without its impression and never the other items' negatives.
final class JoinStateRecoveryTests: KeyedExamplesTestCase {
    func examples(_ d: TaskDriver) throws -> [String] {
        try d.examples.flatMap { try ExampleCodec.decodeBundle(ExampleCodec.header + $0) }
            .filter { !$0.userId.hasPrefix("clock") }
            .map { "\($0.userId) \($0.itemId) \($0.label) \($0.eventTs) \($0.impressionTs ?? -1) \($0.requestId ?? "-") late=\($0.late)" }
            .sorted()
    }

    /// Impressions whose windows are open at the checkpoint, a crash of every
    /// item task right after it (nothing to replay, so no example is sent
    /// twice), an engagement, then the windows close.
    func run(_ topology: Topology, crash: Bool) throws -> [String] {
        let d = TaskDriver(topology: topology, interactionPartitions: 2, impressionPartitions: 2, repartitionPartitions: 3,
                           nowMs: base + 48 * hour, itemEmbeddings: true)
        for u in 0..<4 {
            impression(d, "u\(u)", ["a\(u)", "b\(u)", "c\(u)"], at: base + Int64(100 + u) * second, request: "r\(u)")
        }
        d.runUntilQuiet()
        clock(d, at: base + 200 * second)
        if crash {
            try d.checkpoint()
            for p: Int32 in 0..<3 { try d.crash(TaskId(stage: .items, partition: p)) }
            d.runUntilQuiet()
        }
        for u in 0..<4 { interaction(d, "u\(u)", "a\(u)", at: base + Int64(300 + u) * second) }
        d.runUntilQuiet()
        clock(d, at: base + 2 * hour)
        return try examples(d)
    }

    func testACrashOfTheItemTasksKeepsTheOpenJoinWindows() throws {
        let clean = try run(Topology(), crash: false)
        XCTAssertEqual(clean.count, 12, "four positives with context, eight negatives at the close")
        XCTAssertEqual(clean.filter { $0.contains(" positive ") && !$0.contains(" -1 ") }.count, 4)
        XCTAssertEqual(try run(Topology(), crash: true), clean)
    }

    /// The same without the counts stage (input not keyed by user: the join
    /// reads the sources' events directly).
    func testACrashKeepsTheOpenJoinWindowsWithoutTheCountsStage() throws {
        var unkeyed = Topology()
        unkeyed.sources.keyedByUser = false
        let clean = try run(unkeyed, crash: false)
        XCTAssertEqual(clean.count, 12)
        XCTAssertEqual(try run(unkeyed, crash: true), clean)
    }
}
