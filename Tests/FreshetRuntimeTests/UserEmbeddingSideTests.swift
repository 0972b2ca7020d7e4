import FreshetCore
import FreshetEmbeddings
import FreshetFeatures
@testable import FreshetRuntime
import XCTest

/// The user side of the embeddings without Kafka or Redis: the history is the
/// head of `recent_items_50`, a new refresh republishes every user in slices,
/// and each vector is bit-identical to `ItemVectorSet.meanVector` of the
/// first `history` recent items.
final class UserEmbeddingSideTests: XCTestCase {
    /// A refreshed set over items i0..i7 (two co-consumed groups).
    static func vectorSet(after previous: ItemVectorSet? = nil) -> ItemVectorSet {
        var builder = CooccurrenceSnapshot.Builder()
        for i in 0..<8 {
            let group = i < 4 ? 0..<4 : 4..<8
            builder.addRow(item: ByteId("i\(i)"), degree: 5,
                           entries: group.filter { $0 != i }.map { (ByteId("i\($0)"), UInt32(1 + ($0 + i) % 3)) })
        }
        return SpectralRefresh.refresh(SymmetricSparseMatrix(builder.snapshot), dimension: 4, previous: previous, iterations: 8, seed: 42)
    }

    /// A user side whose users' vectors are the mean over their first `history` items.
    static func side(history: Int) -> UserEmbeddingSide {
        var settings = Topology.Embeddings()
        settings.history = history
        return UserEmbeddingSide(settings: settings)
    }

    func testHistoryIsTheHeadOfRecentItemsBeforeThePositive() {
        let side = Self.side(history: 3)
        let store = UserFeatureStore()
        for (t, item) in ["i1", "i2", "i3", "i4"].enumerated() {
            store.apply(Interaction(userId: "u", itemId: item, action: .click, ts: Int64(1_000 + t)))
        }
        XCTAssertEqual(side.historyBefore(user: "u", store: store), ["i4", "i3", "i2"], "newest first, at most `history`")
        XCTAssertEqual(side.historyBefore(user: "nobody", store: store), [])
        // The encoded form the routed record carries is the same list, byte for byte.
        XCTAssertEqual(side.encodedHistoryBefore(user: "u", store: store),
                       ItemEvent(itemId: "x", userId: "u", ts: 0, kind: .interaction(.click, dwellMs: nil),
                                 userHistory: ["i4", "i3", "i2"]).userHistoryEncoded)
        XCTAssertEqual(side.encodedHistoryBefore(user: "nobody", store: store), [])
    }

    /// The source task's path: the user is looked up once, its history is
    /// encoded into one reused buffer, and every routed positive carries the
    /// history before it: nothing left over from the previous user's, nothing
    /// on a skip, nothing for a user's first positive.
    func testTheSourceTaskRoutesEachPositiveWithTheHistoryBeforeIt() throws {
        var settings = Topology.Embeddings()
        settings.history = 3
        let base: Int64 = 1_767_225_600_000  // 2026-01-01T00:00Z
        let task = SourceTask(id: TaskId(stage: .interactions, partition: 0), topic: "interactions", decoder: EventDecoder(),
                              outOfOrdernessMs: 5_000, keepsUserFeatures: true)
        task.userEmbeddings = UserEmbeddingSide(settings: settings)
        let output = DataflowTests.MemoryOutput(partitions: 1)
        let events: [(user: String, item: String, action: String)] = [
            ("u", "i1", "click"), ("u", "i2", "like"), ("u", "i3", "skip"), ("u", "i4", "click"),
            ("u", "i5", "click"), ("v", "i9", "click"), ("u", "i2", "click"),
        ]
        for (offset, e) in events.enumerated() {
            let json = #"{"user_id":"\#(e.user)","item_id":"\#(e.item)","action":"\#(e.action)","ts":\#(base + Int64(offset))}"#
            task.process(InputRecord(partition: 0, offset: Int64(offset), key: nil, value: Array(json.utf8), timestampMs: nil),
                         nowMs: base + 60_000, output: output)
        }
        XCTAssertTrue(output.deadLetters.isEmpty)
        var histories: [String] = []
        for record in output.items[0] {
            guard case .item(let event, _) = try RepartitionRecord.decode(record.value) else { continue }
            histories.append("\(event.itemId):\(event.userHistory.joined(separator: ","))")
        }
        XCTAssertEqual(histories, ["i1:", "i2:i1", "i3:", "i4:i2,i1", "i5:i4,i2,i1", "i9:", "i2:i5,i4,i2"])
        XCTAssertEqual(task.users?.features(of: "u")?.recentItems, ["i2", "i5", "i4", "i1"])
        XCTAssertEqual(task.users?.features(of: "u")?.interactionCount, 5)
        XCTAssertNil(task.users?.features(of: "w"), "no state for a user never seen")
    }

    func testNewRefreshRepublishesEveryUserInSlicesWithTheMeanOfTheirItems() throws {
        let set = Self.vectorSet()
        XCTAssertGreaterThan(set.version, 0)
        let side = Self.side(history: 10)
        let store = UserFeatureStore()
        let users = UserEmbeddingSide.republishSlice + 1_000
        for u in 0..<users {
            for k in 0..<(1 + u % 12) {
                store.apply(Interaction(userId: "u\(u)", itemId: "i\((u + k) % 9)", action: .click, ts: Int64(10_000 + k)))
            }
        }
        var seen: [String: [Float]] = [:]
        var calls = 0
        repeat {
            side.takePublication(set, store: store) { user, vector in
                XCTAssertNil(seen[user], "\(user) written once")
                seen[user] = Array(vector)
            }
            calls += 1
        } while side.republishing && calls < 10
        XCTAssertEqual(calls, 2, "two slices")
        XCTAssertEqual(seen.count, users, "every user (each has an item with a vector)")
        for u in [0, 1, 11, 500, users - 1] {
            let recent = store.features(of: "u\(u)")!.recentItems.prefix(10).map(ByteId.init)
            XCTAssertEqual(seen["u\(u)"], set.meanVector(recent), "u\(u): mean of the first 10 recent items' vectors, bit for bit")
        }

        // Same refresh again: only users touched since, and only when their
        // vector changed (u4 is touched with no new positive: left out).
        store.apply(Interaction(userId: "u3", itemId: "i0", action: .click, ts: 20_000))
        side.touch(user: "u3", store: store)
        side.touch(user: "u4", store: store)
        var again: [String] = []
        side.takePublication(set, store: store) { user, _ in again.append(user) }
        XCTAssertEqual(again, ["u3"])
        XCTAssertEqual(side.unchangedSkipped, 1, "u4's vector is the one already written")
        XCTAssertFalse(side.republishing)

        // A user whose key Redis refused: written again at the next flush
        // (`republishing`), its vector unchanged; once.
        side.rewrite(slot: try XCTUnwrap(store.userSlot("u4")))
        XCTAssertTrue(side.republishing, "the next flush publishes it")
        var rewritten: [String: [Float]] = [:]
        side.takePublication(set, store: store) { user, vector in rewritten[user] = Array(vector) }
        XCTAssertEqual(rewritten, ["u4": seen["u4"]!])
        XCTAssertFalse(side.republishing)
        side.takePublication(set, store: store) { user, _ in XCTFail("\(user) written again") }

        // Touched users are written in slices too (bounded Redis batches);
        // users touched during the drain wait for the next round. Every user
        // gets i7...i0 (newest first: i0, i1, ..., an order no earlier
        // history had), so every vector changes.
        for u in 0..<users {
            for k in 0..<8 {
                store.apply(Interaction(userId: "u\(u)", itemId: "i\(7 - k)", action: .click, ts: Int64(30_000 + k)))
            }
        }
        for u in 0..<users { side.touch(user: "u\(u)", store: store) }
        var first: [String] = []
        side.takePublication(set, store: store) { user, _ in first.append(user) }
        XCTAssertEqual(first.count, UserEmbeddingSide.republishSlice)
        XCTAssertTrue(side.republishing, "the rest of the touched users follow at the next flush")
        store.apply(Interaction(userId: "u0", itemId: "i5", action: .click, ts: 40_000))
        side.touch(user: "u0", store: store)
        var rest: [String] = []
        side.takePublication(set, store: store) { user, _ in rest.append(user) }
        XCTAssertEqual(rest, (UserEmbeddingSide.republishSlice..<users).map { "u\($0)" })
        XCTAssertFalse(side.republishing)
        XCTAssertEqual(side.pendingUsers, 1)
        var last: [String] = []
        side.takePublication(set, store: store) { user, _ in last.append(user) }
        XCTAssertEqual(last, ["u0"], "touched again during the drain: written at the next round")
    }

    /// A new refresh's republication writes every user once: users touched
    /// before it are not written a second time in the same round, users
    /// touched after it started are written again at the next sync.
    func testRepublicationAbsorbsTheUsersTouchedBeforeIt() {
        let first = Self.vectorSet()
        let side = Self.side(history: 10)
        let store = UserFeatureStore()
        for u in 0..<50 {
            store.apply(Interaction(userId: "u\(u)", itemId: "i\(u % 9)", action: .click, ts: Int64(10_000 + u)))
        }
        side.takePublication(first, store: store) { _, _ in }
        XCTAssertFalse(side.republishing)

        for u in 0..<10 { side.touch(user: "u\(u)", store: store) }
        let second = Self.vectorSet(after: first)
        XCTAssertGreaterThan(second.version, first.version)
        var written: [String: Int] = [:]
        side.takePublication(second, store: store) { user, _ in written[user, default: 0] += 1 }
        // Every user whose item has a vector: i8 (u % 9 == 8) has none.
        XCTAssertEqual(Set(written.keys), Set((0..<50).filter { $0 % 9 != 8 }.map { "u\($0)" }))
        XCTAssertEqual(written.values.max(), 1, "each once: \(written.filter { $0.value > 1 })")
        XCTAssertEqual(side.pendingUsers, 0)

        store.apply(Interaction(userId: "u7", itemId: "i0", action: .click, ts: 20_000))
        side.touch(user: "u7", store: store)
        var next: [String] = []
        side.takePublication(second, store: store) { user, _ in next.append(user) }
        XCTAssertEqual(next, ["u7"], "touched after the republication started: written at the next sync")
    }
    /// A refresh whose rows moved (new items sorting before the old ones):
    /// every user's vector is the mean in the new set, bit for bit. The side
    /// maps the store's item numbers to rows of the set once per set; a map
    /// kept from the previous set would read the wrong rows.
    func testANewRefreshWithMovedRowsGivesEveryUserTheMeanInTheNewSet() throws {
        let first = Self.vectorSet()
        var builder = CooccurrenceSnapshot.Builder()
        for i in 0..<8 {
            let group = i < 4 ? 0..<4 : 4..<8
            builder.addRow(item: ByteId("i\(i)"), degree: 5,
                           entries: group.filter { $0 != i }.map { (ByteId("i\($0)"), UInt32(1 + ($0 * i) % 3)) })
        }
        for a in 0..<2 {
            let entries: [(ByteId, UInt32)] = [(ByteId("i\(a * 4)"), 2), (ByteId("i\(a * 4 + 1)"), 1)]
            builder.addRow(item: ByteId("a\(a)"), degree: 3, entries: entries)
        }
        let second = SpectralRefresh.refresh(SymmetricSparseMatrix(builder.snapshot), dimension: 4, previous: first,
                                             iterations: 8, seed: 42)
        XCTAssertGreaterThan(second.version, first.version)
        XCTAssertEqual(try XCTUnwrap(second.rowOf[ByteId("i0")]), try XCTUnwrap(first.rowOf[ByteId("i0")]) + 2,
                       "the new items' rows come first")

        let side = Self.side(history: 3)
        let store = UserFeatureStore()
        for u in 0..<40 {
            for k in 0..<3 {
                store.apply(Interaction(userId: "u\(u)", itemId: "i\((u + 3 * k) % 8)", action: .click, ts: Int64(1_000 + k)))
            }
        }
        func publish(_ set: ItemVectorSet) -> [String: [Float]] {
            var written: [String: [Float]] = [:]
            var calls = 0
            repeat {
                side.takePublication(set, store: store) { user, vector in written[user] = Array(vector) }
                calls += 1
            } while side.republishing && calls < 10
            return written
        }
        for (set, written) in [(first, publish(first)), (second, publish(second))] {
            XCTAssertEqual(written.count, 40, "version \(set.version): every user")
            for u in 0..<40 {
                let recent = store.features(of: "u\(u)")!.recentItems.prefix(3).map(ByteId.init)
                XCTAssertEqual(written["u\(u)"], set.meanVector(recent), "version \(set.version), u\(u)")
            }
        }
    }

    /// A user whose first items all lose their vectors (new items, folded in
    /// but not in the refresh) no longer has one: its fields are removed
    /// once, and it is written again when an item of the refresh comes back
    /// among its first. A side that starts (a restart) removes the vector of
    /// a user that has none, since an earlier process may have written one.
    /// (A breaker found stale user vectors kept for minutes.)
    func testAUserWhoseFirstItemsHaveNoVectorLosesItsVectorOnce() {
        let set = Self.vectorSet()
        let side = Self.side(history: 2)
        let store = UserFeatureStore()
        store.apply(Interaction(userId: "u", itemId: "i1", action: .click, ts: 1_000))
        store.apply(Interaction(userId: "w", itemId: "new-0", action: .click, ts: 1_000))
        var written: [String] = [], removed: [String] = []
        side.takePublication(set, store: store, removed: { removed.append($0) }) { user, _ in written.append(user) }
        XCTAssertEqual(written, ["u"])
        XCTAssertEqual(removed, ["w"], "no vector now; one may be left from an earlier process")

        // Two new items at the head of u's list: none of its first two has a vector.
        for (t, item) in ["new-1", "new-2"].enumerated() {
            store.apply(Interaction(userId: "u", itemId: item, action: .click, ts: Int64(2_000 + t)))
        }
        side.touch(user: "u", store: store)
        side.touch(user: "w", store: store)
        written = []; removed = []
        side.takePublication(set, store: store, removed: { removed.append($0) }) { user, _ in written.append(user) }
        XCTAssertEqual(written, [])
        XCTAssertEqual(removed, ["u"], "u's vector goes; w's went already")
        side.touch(user: "u", store: store)
        removed = []
        side.takePublication(set, store: store, removed: { removed.append($0) }) { _, _ in }
        XCTAssertEqual(removed, [], "removed once")

        // An item of the refresh back at the head: written again.
        store.apply(Interaction(userId: "u", itemId: "i2", action: .click, ts: 3_000))
        side.touch(user: "u", store: store)
        written = []
        side.takePublication(set, store: store, removed: { removed.append($0) }) { user, _ in written.append(user) }
        XCTAssertEqual(written, ["u"])
    }
}
