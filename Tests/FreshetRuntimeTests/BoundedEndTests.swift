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
                XCTAssertEqual(item.embeddings?.joiner.watermark, item.currentWatermark, "trial \(trial): \(item.id)")
            }
            for case let counts as CountTask in d.tasks.values {
                XCTAssertTrue(counts.atEnd, "trial \(trial): \(counts.id)")
                XCTAssertEqual(counts.heldCount, 0)
            }
        }
    }
}
