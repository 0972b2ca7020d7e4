import FreshetCore
@testable import FreshetFeatures
import XCTest

/// `ItemFeatureStore.windowTotals(of:asOf:)`: the window ending at the
/// given time's pane, over every event applied so far, whatever the watermark.
final class WindowTotalsTests: XCTestCase {
    let hour: Int64 = 3_600_000
    let base: Int64 = 1_767_225_600_000  // an hour boundary

    func testTheWindowEndsAtTheTimesPaneWhateverTheWatermark() throws {
        let store = ItemFeatureStore(panes: PaneSpec(paneMs: hour, windowPanes: 3))
        func click(_ ts: Int64) {
            store.apply(ItemEvent(itemId: "i", userId: "u", ts: ts, kind: .interaction(.click, dwellMs: nil)), watermark: nil)
        }
        click(base + 10)               // pane 0
        click(base + hour + 10)        // pane 1
        store.apply(ItemEvent(itemId: "i", userId: "u", ts: base + 2 * hour, kind: .impression(position: nil)), watermark: nil)
        click(base + 3 * hour + 10)    // pane 3
        XCTAssertNil(store.watermark, "no watermark: nothing visible in the features")
        XCTAssertEqual(store.features(of: "i")?.popularity7d, 0)
        // As of pane 2: panes 0...2 (the later pane 3 is not in it).
        let atTwo = try XCTUnwrap(store.windowTotals(of: "i", asOf: base + 2 * hour + 1))
        XCTAssertEqual(atTwo.popularity, 2)
        XCTAssertEqual(atTwo.impressions, 1)
        // As of pane 3: panes 1...3 (pane 0 has left the window).
        XCTAssertEqual(store.windowTotals(of: "i", asOf: base + 3 * hour)?.popularity, 2)
        XCTAssertEqual(store.windowTotals(of: "i", asOf: base + 3 * hour)?.impressions, 1)
        XCTAssertNil(store.windowTotals(of: "unknown", asOf: base))
    }
}
