import FreshetCore
import FreshetEmbeddings
@testable import FreshetRuntime
import XCTest

/// The end of a bounded run with the counts stage (`TaskDriver`, default
/// topology), over seeded random schedules: events on every source
/// partition, tasks run in random order, checkpoints and crashes of any task
/// (sources included), sources ending one at a time. Whatever the order, every
/// item task ends with the join's watermark equal to the features' (the
/// sources' final minimum): the last join windows are not left open.
final class BoundedEndTests: XCTestCase {
    let base: Int64 = 1_767_225_600_000

    func testTheJoinEndsAtTheFeaturesWatermarkInAnySchedule() throws {
        var rng = SplitMix64(seed: 7)
        for trial in 0..<150 {
            let d = TaskDriver(topology: Topology(), interactionPartitions: 2, impressionPartitions: 2, repartitionPartitions: 3,
                               nowMs: base + 480 * 3_600_000, itemEmbeddings: true)
            let sources = (0..<Int32(2)).flatMap { [TaskId(stage: .interactions, partition: $0), TaskId(stage: .impressions, partition: $0)] }
            var all = Array(d.tasks.keys).sorted { $0.description < $1.description }
            func chaos(checkpointOdds: Int, crashOdds: Int) throws {
                if Int.random(in: 0..<checkpointOdds, using: &rng) == 0 { try d.checkpoint() }
                if Int.random(in: 0..<crashOdds, using: &rng) == 0, let victim = all.randomElement(using: &rng) { try d.crash(victim) }
            }
            for step in 0..<60 {
                let p = Int32.random(in: 0..<2, using: &rng)
                let ts = base + Int64(step) * 60_000 + Int64.random(in: 0..<3_600_000, using: &rng)
                let user = "u\(Int.random(in: 0..<6, using: &rng))"
                if Bool.random(using: &rng) {
                    d.send(.interactions, partition: p, Array(#"{"user_id":"\#(user)","item_id":"i\#(step % 5)","action":"click","ts":\#(ts)}"#.utf8))
                } else {
                    d.send(.impressions, partition: p, Array(#"{"user_id":"\#(user)","items_shown":["i\#(step % 5)"],"ts":\#(ts)}"#.utf8))
                }
                if Int.random(in: 0..<4, using: &rng) == 0, let id = all.randomElement(using: &rng) { d.run(id) }
                try chaos(checkpointOdds: 10, crashOdds: 15)
            }
            // Sources end one at a time, between partial runs, checkpoints and crashes.
            for source in sources.shuffled(using: &rng) {
                for _ in 0..<Int.random(in: 0..<8, using: &rng) { if let id = all.randomElement(using: &rng) { d.run(id) } }
                d.run(source)
                d.finish(source)
                try chaos(checkpointOdds: 3, crashOdds: 3)
            }
            // A crashed source reads its partition again and ends again (as
            // after a rebalance); final markers are re-sent as the engine does.
            for source in sources { d.run(source); d.finish(source) }
            for _ in 0..<20 {
                all.shuffle(using: &rng)
                for id in all { d.run(id, finalMarkersDue: true) }
            }
            for case let item as ItemTask in d.tasks.values {
                XCTAssertTrue(item.atEnd, "trial \(trial): \(item.id) heard every final marker")
                XCTAssertNotNil(item.currentWatermark)
                // The join (the counts stage's) ends with the features.
                for case let counts as CountTask in d.tasks.values {
                    XCTAssertEqual(counts.joiner.watermark, item.currentWatermark, "trial \(trial): \(counts.id), \(item.id)")
                }
            }
            for case let counts as CountTask in d.tasks.values {
                XCTAssertTrue(counts.atEnd, "trial \(trial): \(counts.id)")
                XCTAssertEqual(counts.heldCount, 0)
            }
        }
    }
}

extension BoundedEndTests {
    /// A bounded run ends a source partition at its end-of-partition notice;
    /// librdkafka sends one every time the consumer catches up, and keeps
    /// fetching. A record produced after that end used to be processed: the
    /// source's watermark, and so the item features', moved past the final
    /// one it had announced, while the counts stage had already ended at the
    /// announced one (its final marker behind; the join's watermark with it).
    /// Now the record is left for the next run and every final watermark is
    /// the announced one.
    func testARecordReadAfterASourcesEndIsLeftForTheNextRun() throws {
        let d = TaskDriver(topology: Topology(), interactionPartitions: 2, impressionPartitions: 2, repartitionPartitions: 3,
                           nowMs: base + 480 * 3_600_000, itemEmbeddings: true)
        func event(_ stage: TaskId.Stage, _ p: Int32, _ user: String, _ item: String, at ts: Int64) {
            if stage == .interactions {
                d.send(stage, partition: p, Array(#"{"user_id":"\#(user)","item_id":"\#(item)","action":"click","ts":\#(ts)}"#.utf8))
            } else {
                d.send(stage, partition: p, Array(#"{"user_id":"\#(user)","items_shown":["\#(item)"],"ts":\#(ts)}"#.utf8))
            }
        }
        let hour: Int64 = 3_600_000
        // interactions-0 is the slowest partition (it ends at 1 h); the others at 3 h.
        event(.interactions, 0, "u0", "a", at: base + hour)
        event(.interactions, 1, "u1", "b", at: base + 3 * hour)
        event(.impressions, 0, "u2", "a", at: base + 3 * hour)
        event(.impressions, 1, "u3", "b", at: base + 3 * hour)
        d.runUntilQuiet()
        d.finishSources()
        let announced = base + hour - 5_000
        // Produced after interactions-0 reached its end, read by the same consumer.
        event(.interactions, 0, "u0", "late-item", at: base + 3 * hour)
        d.runUntilQuiet()

        let source = try XCTUnwrap(d.tasks[TaskId(stage: .interactions, partition: 0)] as? SourceTask)
        XCTAssertEqual(source.recordsAfterEnd, 1)
        XCTAssertEqual(source.nextOffset, 1, "its offset is not taken: the next run reads it")
        XCTAssertNil(d.itemFeatures("late-item"))
        for case let counts as CountTask in d.tasks.values {
            XCTAssertEqual(counts.released, announced, "\(counts.id)")
        }
        for case let item as ItemTask in d.tasks.values {
            XCTAssertTrue(item.atEnd)
            XCTAssertEqual(item.currentWatermark, announced, "\(item.id): the announced final watermark")
            for case let counts as CountTask in d.tasks.values {
                XCTAssertEqual(counts.joiner.watermark, item.currentWatermark,
                               "\(counts.id): the join ends with the features (before: 2 h behind them)")
            }
        }
    }
}
