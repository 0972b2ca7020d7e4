import XCTest
import FreshetCore
@testable import FreshetFeatures

/// Incremental checkpoints: restoring the changed entries of every checkpoint
/// in turn must give the same store as the one that took them.
final class ItemCheckpointDeltaTests: XCTestCase {
    let spec = PaneSpec(paneMs: 10, windowPanes: 3)

    func impression(_ item: String, ts: Int64) -> ItemEvent {
        ItemEvent(itemId: item, userId: "u", ts: ts, kind: .impression(position: 0))
    }

    /// An impression in a pane above the watermark's, older than the item's
    /// updated_ms, changes nothing Redis shows yet, but it must reach the next
    /// checkpoint: a restore from that checkpoint would otherwise lose it.
    func testCountInAFuturePaneReachesTheNextCheckpoint() throws {
        let store = ItemFeatureStore(panes: spec)
        var snapshot: [String: [UInt8]] = [:]
        func checkpoint() {
            for id in store.takeChangedForCheckpoint() { snapshot[id] = store.encodeEntry(id) }
        }
        store.advanceWatermark(to: 5) // pane 0
        store.apply(impression("a", ts: 27), watermark: 5) // pane 2, above the watermark's
        checkpoint()
        store.apply(impression("a", ts: 25), watermark: 5) // same future pane, not newer
        checkpoint()

        let restored = ItemFeatureStore(panes: spec)
        try restored.restoreMetadata(store.encodeMetadata())
        for (id, bytes) in snapshot { try restored.restoreEntry(itemId: id, bytes: bytes) }
        store.advanceWatermark(to: 29)
        restored.advanceWatermark(to: 29)
        XCTAssertEqual(store.features(of: "a")?.impressions7d, 2)
        XCTAssertEqual(restored.features(of: "a"), store.features(of: "a"))
    }
}
