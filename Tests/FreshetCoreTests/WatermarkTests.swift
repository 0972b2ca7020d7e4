import XCTest
@testable import FreshetCore

final class WatermarkTests: XCTestCase {
    func testBoundedOutOfOrderness() {
        var w = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)
        XCTAssertNil(w.watermark)
        w.observe(100_000)
        XCTAssertEqual(w.watermark, 95_000)
        w.observe(90_000) // late event: no regression
        XCTAssertEqual(w.watermark, 95_000)
        w.observe(120_000)
        XCTAssertEqual(w.watermark, 115_000)
        XCTAssertEqual(w.maxTimestamp, 120_000)
    }

    func testMultiplexerMinAndUnknown() {
        var m = WatermarkMultiplexer<Int>(idleTimeoutMs: 10_000)
        m.register(0, nowMs: 0)
        m.register(1, nowMs: 0)
        m.update(0, watermark: 500, nowMs: 1)
        XCTAssertNil(m.combined(nowMs: 1), "input 1 has no watermark and is not idle yet")
        m.update(1, watermark: 300, nowMs: 2)
        XCTAssertEqual(m.combined(nowMs: 2), 300)
        m.update(1, watermark: 200, nowMs: 3) // regressions are ignored
        XCTAssertEqual(m.inputs[1]?.watermark, 300)
        m.update(1, watermark: 900, nowMs: 4)
        XCTAssertEqual(m.combined(nowMs: 4), 500)
    }

    func testIdleInputsAreLeftOut() {
        var m = WatermarkMultiplexer<String>(idleTimeoutMs: 10_000)
        m.register("a", nowMs: 0)
        m.register("never", nowMs: 0)
        m.update("a", watermark: 1_000, nowMs: 5_000)
        XCTAssertNil(m.combined(nowMs: 9_999))
        XCTAssertEqual(m.combined(nowMs: 10_000), 1_000, "a registered input that never reported goes idle")
        m.register("b", nowMs: 0)
        m.update("b", watermark: 100, nowMs: 1)
        XCTAssertEqual(m.combined(nowMs: 10_001), 1_000, "b idle: no update since 1")
        XCTAssertEqual(m.combined(nowMs: 10_000), 100, "b not idle yet")
        XCTAssertEqual(m.combined(nowMs: 5_000), nil)
        XCTAssertTrue(m.isIdle("b", nowMs: 10_001))
        // Everything idle -> nil.
        XCTAssertNil(m.combined(nowMs: 100_000))
    }

    func testFinishedInputs() {
        var m = WatermarkMultiplexer<Int>(idleTimeoutMs: 1_000)
        m.update(0, watermark: 400, nowMs: 0)
        m.update(1, watermark: 700, nowMs: 0)
        m.markFinished(0)
        m.register(2, nowMs: 0)
        m.markFinished(2) // finished without watermark: excluded
        XCTAssertEqual(m.combined(nowMs: 500), 400)
        // Long after: 1 is idle, 0 is finished and keeps its watermark.
        XCTAssertEqual(m.combined(nowMs: 1_000_000), 400)
    }

    func testAdvanceIsMonotone() {
        var m = WatermarkMultiplexer<Int>(idleTimeoutMs: 1_000)
        m.update(0, watermark: 1_000, nowMs: 0)
        m.update(1, watermark: 5_000, nowMs: 0)
        XCTAssertEqual(m.advance(nowMs: 0), 1_000)
        m.update(1, watermark: 6_000, nowMs: 2_000)
        XCTAssertEqual(m.advance(nowMs: 2_000), 6_000, "input 0 idle")
        m.update(0, watermark: 2_000, nowMs: 2_500) // 0 comes back lower
        XCTAssertEqual(m.combined(nowMs: 2_500), 2_000)
        XCTAssertEqual(m.advance(nowMs: 2_500), 6_000)
        m.remove(1)
        XCTAssertEqual(m.combined(nowMs: 2_500), 2_000)
    }

    /// Inputs that all go idle at once before anything was emitted (a replay
    /// of a quiet partition next to an empty one) still give a watermark.
    func testAdvanceWhenEveryInputWentIdleTogether() {
        var m = WatermarkMultiplexer<Int>(idleTimeoutMs: 1_000)
        m.register(1, nowMs: 0)                     // never reports
        m.update(0, watermark: 7_000, nowMs: 0)     // replayed markers, then quiet
        XCTAssertNil(m.advance(nowMs: 10), "input 1 not idle yet and without watermark")
        XCTAssertNil(m.combined(nowMs: 5_000), "every input idle")
        XCTAssertEqual(m.advance(nowMs: 5_000), 7_000, "the known watermark once all are idle")
        m.update(1, watermark: 3_000, nowMs: 6_000)  // input 1 comes back lower: output stays
        XCTAssertEqual(m.advance(nowMs: 6_000), 7_000)
    }

    func testNoIdleTimeoutMeansNeverIdle() {
        var m = WatermarkMultiplexer<Int>(idleTimeoutMs: nil)
        m.register(0, nowMs: 0)
        m.update(1, watermark: 5, nowMs: 0)
        XCTAssertNil(m.combined(nowMs: .max))
    }

    func testPanesWithNegativeTimes() {
        let spec = PaneSpec(paneMs: 1_000, windowPanes: 3)
        XCTAssertEqual(spec.pane(of: 0), 0)
        XCTAssertEqual(spec.pane(of: 999), 0)
        XCTAssertEqual(spec.pane(of: 1_000), 1)
        XCTAssertEqual(spec.pane(of: -1), -1)
        XCTAssertEqual(spec.pane(of: -1_000), -1)
        XCTAssertEqual(spec.pane(of: -1_001), -2)
        XCTAssertEqual(spec.windowPanes(at: 5_500), 3...5)
        XCTAssertEqual(spec.windowPanes(at: -1), -3 ... -1)
        XCTAssertEqual(PaneSpec().pane(of: 3_600_000 * 10 + 5), 10)
    }
}
