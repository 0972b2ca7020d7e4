import XCTest
import FreshetCore
@testable import FreshetFeatures

/// Checkpoints encode changed entries slot by slot into one reused writer
/// (`appendCheckpointEntry`); every entry must be byte for byte what
/// `encodeEntry` gives for its id (the format earlier releases restore).
final class CheckpointEntryWriterTests: XCTestCase {
    func testUserEntriesInOneReusedWriterMatchPerIdEncoding() throws {
        let store = UserFeatureStore(recentCapacity: 3)
        for (k, user) in ["u1", "u2", "ü\u{0}3", "u1"].enumerated() {
            for j in 0..<(k + 2) {
                store.apply(Interaction(userId: user, itemId: "i\(j)", action: .click, ts: Int64(100 * k + j)))
            }
        }
        let slots = store.takeChangedSlotsForCheckpoint()
        XCTAssertEqual(slots.count, 3)
        var writer = ByteWriter()
        var ids: [String] = []
        for slot in slots {
            writer.bytes.removeAll(keepingCapacity: true)
            let id = store.appendCheckpointEntry(slot: slot, to: &writer)
            ids.append(id)
            XCTAssertEqual(writer.bytes, store.encodeEntry(id), id)
        }
        XCTAssertEqual(ids, ["u1", "u2", "ü\u{0}3"])
        XCTAssertTrue(store.takeChangedSlotsForCheckpoint().isEmpty, "taking clears the checkpoint list")
    }

    /// The user entry's bytes against the format written field by field
    /// (`[1] count:zigzag updated_ms:zigzag n:varint (item:string ts:zigzag)*n`):
    /// ids short and long (past one 16-byte move), escaped and multi-byte;
    /// times negative and of every varint length.
    func testUserEntryMatchesTheFormatWrittenFieldByField() throws {
        let store = UserFeatureStore(recentCapacity: 50)
        let items = ["i", "item-00042", "an-item-id-longer-than-sixteen-bytes", "q\"uote\\", "ü\u{0}é", String(repeating: "x", count: 200)]
        let times: [Int64] = [-5, 0, 63, 64, 8_191, 1_767_225_600_000, Int64.max / 3]
        var k = 0
        for ts in times {
            for item in items {
                store.apply(Interaction(userId: "user-1", itemId: item, action: .click, ts: ts &+ Int64(k)))
                k += 1
            }
        }
        let slot = try XCTUnwrap(store.takeChangedSlotsForCheckpoint().first)
        var writer = ByteWriter()
        XCTAssertEqual(store.appendCheckpointEntry(slot: slot, to: &writer), "user-1")

        let state = store.states[Int(slot)]
        var expected = ByteWriter()
        expected.write(byte: UserFeatureStore.entryFormat)
        expected.write(zigzag: state.count)
        expected.write(zigzag: state.updatedMs)
        expected.write(varint: UInt64(state.recent.count))
        for e in state.recent.entries {
            expected.write(string: store.itemNames[e.item])
            expected.write(zigzag: e.ts)
        }
        XCTAssertEqual(state.recent.count, items.count)
        XCTAssertEqual(writer.bytes, expected.bytes)
    }

    func testItemEntriesInOneReusedWriterMatchPerIdEncoding() throws {
        let store = ItemFeatureStore(panes: PaneSpec(paneMs: 10, windowPanes: 3))
        store.advanceWatermark(to: 5)
        for (item, ts) in [("a", 6), ("b", 15), ("a", 24), ("a", 27), ("c", 9)] {
            _ = store.apply(ItemEvent(itemId: item, userId: "u", ts: Int64(ts), kind: .impression(position: 0)), watermark: 5)
        }
        store.advanceWatermark(to: 26)
        let slots = store.takeChangedSlotsForCheckpoint()
        XCTAssertEqual(slots.count, 3)
        var writer = ByteWriter()
        for slot in slots {
            writer.bytes.removeAll(keepingCapacity: true)
            let id = store.appendCheckpointEntry(slot: slot, to: &writer)
            XCTAssertEqual(writer.bytes, store.encodeEntry(id), id)
            // And it restores to the same features.
            let restored = ItemFeatureStore(panes: PaneSpec(paneMs: 10, windowPanes: 3))
            try restored.restoreMetadata(store.encodeMetadata())
            try restored.restoreEntry(itemId: id, bytes: writer.bytes)
            XCTAssertEqual(restored.features(of: id), store.features(of: id), id)
        }
    }
}
