import XCTest
@testable import FreshetCore

/// The decisions of watermark alignment (no consumer, no clock: wall time and
/// watermarks are given). Sources are plain integers here.
final class WatermarkAlignmentTests: XCTestCase {
    typealias Alignment = WatermarkAlignment<Int>

    /// Drift 1,000 ms (resume at 500), stall timeout 10 s.
    func make() -> Alignment {
        Alignment(settings: .init(maxDriftMs: 1_000, stallTimeoutMs: 10_000))
    }

    func own(_ a: inout Alignment, _ s: Int, _ wm: Int64?, now: Int64, read: Bool = true, atEnd: Bool = false,
             finished: Bool = false) {
        a.observeOwned(s, watermark: wm, hasRead: read, atEnd: atEnd, finished: finished, nowMs: now)
    }

    func testPausesBeyondTheDriftAndResumesWithinHalfOfIt() {
        var a = make()
        a.assign(0, nowMs: 0)
        a.assign(1, nowMs: 0)
        own(&a, 0, 10_000, now: 1)
        own(&a, 1, 11_000, now: 1)
        XCTAssertEqual(a.decide(nowMs: 1), .init(), "exactly the drift ahead: not paused")
        own(&a, 1, 11_001, now: 2)
        XCTAssertEqual(a.floor(nowMs: 2), .watermark(10_000))
        XCTAssertEqual(a.decide(nowMs: 2), .init(pause: [1]))
        XCTAssertEqual(a.paused, [1])
        own(&a, 0, 10_400, now: 3)
        XCTAssertEqual(a.decide(nowMs: 3), .init(), "601 ahead: more than half the drift, stays paused")
        own(&a, 0, 10_501, now: 4)
        XCTAssertEqual(a.decide(nowMs: 4), .init(resume: [1]))
        XCTAssertTrue(a.paused.isEmpty)
    }

    func testTheSlowestIsNeverPaused() {
        var a = make()
        for s in 0..<3 { a.assign(s, nowMs: 0) }
        own(&a, 0, 50_000, now: 1)
        own(&a, 1, 1_000, now: 1)
        own(&a, 2, 90_000, now: 1)
        XCTAssertEqual(Set(a.decide(nowMs: 1).pause), [0, 2])
        XCTAssertFalse(a.isPaused(1))
    }

    func testAnOwnedPartitionThatHasNotReportedHoldsTheOthersBack() {
        var a = make()
        a.assign(0, nowMs: 0)
        a.assign(1, nowMs: 0)
        own(&a, 0, 5_000, now: 1)
        own(&a, 1, nil, now: 1, read: false)
        XCTAssertEqual(a.floor(nowMs: 1), .unreported)
        XCTAssertEqual(a.decide(nowMs: 1), .init(pause: [0]), "wait until partition 1 reports")
        own(&a, 1, 4_800, now: 2)
        XCTAssertEqual(a.decide(nowMs: 2), .init(resume: [0]))
    }

    func testAnotherInstancesUnreportedPartitionHoldsNothingBack() {
        var a = make()
        a.assign(0, nowMs: 0)
        own(&a, 0, 5_000, now: 1)
        // Partition 7 belongs to another instance and was never heard of; 8 reported far behind.
        XCTAssertEqual(a.decide(nowMs: 1), .init())
        a.observe(8, watermark: 1_000, nowMs: 2)
        XCTAssertEqual(a.decide(nowMs: 2), .init(pause: [0]))
        a.observe(8, watermark: 900, nowMs: 3)  // lower reports change nothing
        XCTAssertEqual(a.floor(nowMs: 3), .watermark(1_000))
        a.observe(8, watermark: 4_600, nowMs: 4)
        XCTAssertEqual(a.decide(nowMs: 4), .init(resume: [0]))
    }

    func testViewsOfAnOwnedPartitionFromMarkersAreIgnored() {
        var a = make()
        a.assign(0, nowMs: 0)
        a.assign(1, nowMs: 0)
        own(&a, 0, 1_000, now: 1)
        own(&a, 1, 1_000, now: 1)
        a.observe(0, watermark: 50_000, nowMs: 2)  // a stale marker of an earlier owner must not count
        XCTAssertEqual(a.floor(nowMs: 2), .watermark(1_000))
        XCTAssertEqual(a.decide(nowMs: 2), .init())
    }

    func testASlowPartitionAtItsEndOrFinishedReleasesTheOthers() {
        var a = make()
        a.assign(0, nowMs: 0)
        a.assign(1, nowMs: 0)
        a.assign(2, nowMs: 0)
        own(&a, 0, 1_000, now: 1)
        own(&a, 1, 9_000, now: 1)
        own(&a, 2, 9_500, now: 1)
        XCTAssertEqual(Set(a.decide(nowMs: 1).pause), [1, 2])
        // Live: the slow partition read everything there is.
        own(&a, 0, 1_000, now: 2, atEnd: true)
        XCTAssertEqual(a.floor(nowMs: 2), .watermark(9_000), "a paused partition still counts")
        XCTAssertEqual(Set(a.decide(nowMs: 2).resume), [1, 2])
        // New records arrive at the slow one: it holds the others back again.
        own(&a, 0, 1_200, now: 3)
        XCTAssertEqual(Set(a.decide(nowMs: 3).pause), [1, 2])
        // Bounded run: it finishes (its final watermark no longer counts).
        own(&a, 0, 1_300, now: 4, atEnd: true, finished: true)
        own(&a, 0, 1_300, now: 5, atEnd: false, finished: true)
        XCTAssertEqual(Set(a.decide(nowMs: 5).resume), [1, 2])
    }

    func testAnotherInstancesPartitionThatFinishedReleasesTheOthers() {
        var a = make()
        a.assign(0, nowMs: 0)
        own(&a, 0, 9_000, now: 1)
        a.observe(5, watermark: 1_000, nowMs: 1)
        XCTAssertEqual(a.decide(nowMs: 1), .init(pause: [0]))
        a.markFinished(5, nowMs: 2)
        XCTAssertEqual(a.floor(nowMs: 2), .watermark(9_000), "only partition 0 counts now")
        XCTAssertEqual(a.decide(nowMs: 2), .init(resume: [0]))
    }

    func testAPartitionThatStopsAdvancingStopsHoldingTheOthersBack() {
        var a = make()
        a.assign(0, nowMs: 0)
        own(&a, 0, 9_000, now: 0)
        a.observe(5, watermark: 1_000, nowMs: 0)
        XCTAssertEqual(a.decide(nowMs: 0), .init(pause: [0]))
        // Partition 5 keeps reporting the same watermark: not an advance.
        a.observe(5, watermark: 1_000, nowMs: 9_999)
        XCTAssertEqual(a.decide(nowMs: 9_999), .init())
        XCTAssertEqual(a.decide(nowMs: 10_000), .init(resume: [0]), "stalled for the timeout: no longer a floor")
        // It advances again: it counts again.
        a.observe(5, watermark: 1_100, nowMs: 10_001)
        XCTAssertEqual(a.decide(nowMs: 10_001), .init(pause: [0]))
    }

    func testAnOwnedPartitionThatNeverReportsHoldsBackAtMostTheStallTimeout() {
        var a = make()
        a.assign(0, nowMs: 0)
        a.assign(1, nowMs: 0)
        own(&a, 0, 9_000, now: 1)
        own(&a, 1, nil, now: 1, read: true)  // reads only bad records: no watermark
        XCTAssertEqual(a.decide(nowMs: 1), .init(pause: [0]))
        XCTAssertEqual(a.decide(nowMs: 9_999), .init())
        XCTAssertEqual(a.decide(nowMs: 10_000), .init(resume: [0]))
    }

    func testAPartitionIsNotPausedBeforeItsFirstRecordNorAtItsEnd() {
        var a = make()
        a.assign(0, nowMs: 0)
        a.assign(1, nowMs: 0)
        own(&a, 0, 1_000, now: 1)
        // Restored from a checkpoint far ahead, nothing read yet in this assignment.
        own(&a, 1, 50_000, now: 1, read: false)
        XCTAssertEqual(a.decide(nowMs: 1), .init())
        own(&a, 1, 50_000, now: 2, read: true, atEnd: true)
        XCTAssertEqual(a.decide(nowMs: 2), .init(), "nothing left to fetch: pausing would only delay its end")
        own(&a, 1, 50_000, now: 3, read: true)
        XCTAssertEqual(a.decide(nowMs: 3), .init(pause: [1]))
    }

    func testUnassigningAPausedPartitionReportsItAndAReassignmentStartsAfresh() {
        var a = make()
        a.assign(0, nowMs: 0)
        a.assign(1, nowMs: 0)
        own(&a, 0, 1_000, now: 1)
        own(&a, 1, 9_000, now: 1)
        XCTAssertEqual(a.decide(nowMs: 1), .init(pause: [1]))
        XCTAssertTrue(a.unassign(1), "the caller must resume it in the consumer")
        XCTAssertFalse(a.owns(1))
        XCTAssertTrue(a.paused.isEmpty)
        // Reassigned (e.g. rebuilt from offset 0): its old watermark is forgotten.
        a.assign(1, nowMs: 2)
        own(&a, 1, 500, now: 3)
        XCTAssertEqual(a.floor(nowMs: 3), .watermark(500))
        XCTAssertEqual(a.decide(nowMs: 3), .init())
    }

    func testRefusedPausesAndResumesAreRetried() {
        var a = make()
        a.assign(0, nowMs: 0)
        a.assign(1, nowMs: 0)
        own(&a, 0, 1_000, now: 1)
        own(&a, 1, 9_000, now: 1)
        XCTAssertEqual(a.decide(nowMs: 1), .init(pause: [1]))
        a.pauseFailed(1)
        XCTAssertEqual(a.decide(nowMs: 2), .init(pause: [1]))
        own(&a, 0, 9_000, now: 3)
        XCTAssertEqual(a.decide(nowMs: 3), .init(resume: [1]))
        a.resumeFailed(1)
        XCTAssertEqual(a.decide(nowMs: 4), .init(resume: [1]), "never left paused")
    }

    /// A replay simulated step by step: each unpaused partition reads a random
    /// number of records (some partitions are fetched much faster), the
    /// alignment decides after each step. Every partition reaches its end (no
    /// stall), and while none has finished, no two counted partitions are
    /// further apart than the drift plus one step's progress.
    func testASimulatedReplayStaysAlignedAndAlwaysFinishes() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<20 {
            var a = make()
            let count = 6
            let lengths = (0..<count).map { _ in 200 + Int(rng.next() % 400) }
            // Partition p's record i has event time i * step[p] ms: partitions run at different paces.
            let steps = (0..<count).map { _ in Int64(20 + rng.next() % 80) }
            var position = Array(repeating: 0, count: count)
            for p in 0..<count { a.assign(p, nowMs: 0) }
            var now: Int64 = 0
            var maxSpread: Int64 = 0
            var rounds = 0
            while position.enumerated().contains(where: { $0.element < lengths[$0.offset] }) {
                rounds += 1
                XCTAssertLessThan(rounds, 100_000, "stalled: \(position) of \(lengths)")
                if rounds >= 100_000 { return }
                now += 20  // well inside the stall timeout per step
                for p in 0..<count where !a.isPaused(p) && position[p] < lengths[p] {
                    // Fetched in bursts: sometimes nothing, sometimes a lot.
                    let burst = Int(rng.next() % 4 == 0 ? rng.next() % 40 : rng.next() % 3)
                    position[p] = min(lengths[p], position[p] + burst)
                }
                var watermarks: [Int64] = []
                for p in 0..<count {
                    let wm: Int64? = position[p] > 0 ? Int64(position[p] - 1) * steps[p] : nil
                    let done = position[p] == lengths[p]
                    own(&a, p, wm, now: now, read: position[p] > 0, atEnd: done, finished: done)
                    if let wm, !done { watermarks.append(wm) }
                }
                if watermarks.count == count, let lo = watermarks.min(), let hi = watermarks.max() {
                    maxSpread = max(maxSpread, hi - lo)
                }
                _ = a.decide(nowMs: now)
            }
            XCTAssertLessThanOrEqual(maxSpread, 1_000 + 40 * 100, "spread beyond drift + one burst")
            XCTAssertTrue(a.paused.isEmpty)
        }
    }

    /// A downstream stage run here (the counts stage, fed by the sources
    /// through a repartition topic): sources wait for what it has read. Not
    /// reported yet it holds them back (until the stall timeout); behind by
    /// more than the drift it pauses them; it is never paused itself; once
    /// unassigned it holds nothing back.
    func testADownstreamStageBehindTheSourcesHoldsThemBack() {
        var a = make()
        a.assign(0, nowMs: 0)
        a.assign(1, nowMs: 0)
        own(&a, 0, 10_000, now: 1)
        own(&a, 1, 10_200, now: 1)
        a.observeDownstream(100, watermark: nil, nowMs: 1)
        XCTAssertEqual(a.floor(nowMs: 1), .unreported)
        XCTAssertEqual(Set(a.decide(nowMs: 1).pause), [0, 1], "wait until the stage reports")
        a.observeDownstream(100, watermark: 9_800, nowMs: 2)
        XCTAssertEqual(a.floor(nowMs: 2), .watermark(9_800))
        XCTAssertEqual(Set(a.decide(nowMs: 2).resume), [0, 1])
        own(&a, 0, 12_000, now: 3)
        own(&a, 1, 12_000, now: 3)
        XCTAssertEqual(Set(a.decide(nowMs: 3).pause), [0, 1], "the stage is 2,200 ms behind: both sources wait")
        XCTAssertFalse(a.isPaused(100), "the stage itself is never paused")
        a.observeDownstream(100, watermark: 11_600, nowMs: 4)
        XCTAssertEqual(Set(a.decide(nowMs: 4).resume), [0, 1], "within half the drift again")

        // A stage that stops advancing holds nothing back after the stall timeout.
        own(&a, 0, 20_000, now: 5)
        own(&a, 1, 20_000, now: 5)
        XCTAssertEqual(Set(a.decide(nowMs: 5).pause), [0, 1])
        XCTAssertEqual(Set(a.decide(nowMs: 4 + 10_000).resume), [0, 1])

        // Unassigned (the task left this instance): no longer in the floor.
        own(&a, 0, 20_050, now: 20_000)
        own(&a, 1, 20_100, now: 20_000)
        a.observeDownstream(100, watermark: 11_700, nowMs: 20_000)
        XCTAssertEqual(a.floor(nowMs: 20_000), .watermark(11_700))
        a.unassign(100)
        XCTAssertEqual(a.floor(nowMs: 20_000), .watermark(20_050))
    }
}
