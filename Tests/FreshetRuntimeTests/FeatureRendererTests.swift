import FreshetCore
import FreshetFeatures
@testable import FreshetRuntime
import XCTest

/// The flush renders dirty keys straight from the stores' slots; what it
/// writes must be what rendering each id's `features(of:)` writes.
final class FeatureRendererTests: XCTestCase {
    func testItemsAndUsersRenderTheirCurrentFeaturesWithAndWithoutFeast() {
        var feastConfig = Topology.Feast()
        feastConfig.enabled = true
        let keys = RedisKeys(prefix: "p:", group: "g")
        let task = TaskId(stage: .items, partition: 0)
        for feast in [nil, FeastRows(feastConfig)] {
            let renderer = FeatureRenderer(keys: keys, trendingTopK: 10, trending: TrendingDecay(), halfLifeMs: 3_600_000,
                                           feast: feast)
            let items = ItemTask(id: task, panes: PaneSpec(), trending: TrendingDecay(), idleTimeoutMs: nil,
                                 sources: [], nowMs: 0)
            let ts: EventTimeMs = 1_767_225_600_000
            items.store.apply(ItemEvent(itemId: "caf\u{E9}", userId: "u", ts: ts, kind: .interaction(.click, dwellMs: nil)),
                              watermark: ts)
            items.store.apply(ItemEvent(itemId: "cafe\u{301}", userId: "u", ts: ts + 1, kind: .impression(position: 0)),
                              watermark: ts + 1)
            var write = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
            var samples: [Int64] = []
            XCTAssertEqual(renderer.renderItems(items, into: &write, samples: &samples), 2)

            var expected = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
            for id in ["caf\u{E9}", "cafe\u{301}"] {
                let f = items.store.features(of: id)!
                expected.hashSet(keys.item(id), [("popularity_7d", String(f.popularity7d)),
                                                 ("impressions_7d", String(f.impressions7d)),
                                                 ("updated_ms", String(f.updatedMs))])
                if let feast { expected.hashSet(rawKey: feast.itemKey(id), feast.itemFields(f)) }
                if let score = f.trendingLog2Score { expected.sortedSetAdd(keys.trending, score: score, member: id) }
            }
            expected.sortedSetTrim(keys.trending, keep: 10)
            XCTAssertEqual(write.operations, expected.operations, "feast: \(feast != nil)")
            var again = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
            XCTAssertEqual(renderer.renderItems(items, into: &again, samples: &samples), 0, "nothing changed since")

            let users = UserFeatureStore()
            users.apply(Interaction(userId: "u\"1", itemId: "i\n9", action: .click, ts: ts))
            users.apply(Interaction(userId: "u\"1", itemId: "i4", action: .like, ts: ts + 5))
            var userWrite = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
            var counts: [(String, Int64)] = []
            XCTAssertEqual(renderer.renderUsers(users, into: &userWrite, samples: &samples, counts: &counts), 1)
            let f = users.features(of: "u\"1")!
            var userExpected = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
            userExpected.hashSet(keys.user("u\"1"), [
                ("recent_items_50", UserFeatureStore.renderRecentItemsJSON(f.recentItems)),
                ("interaction_count", "2"), ("updated_ms", String(ts + 5)),
            ])
            if let feast { userExpected.hashSet(rawKey: feast.userKey("u\"1"), feast.userFields(f)) }
            XCTAssertEqual(userWrite.operations, userExpected.operations, "feast: \(feast != nil)")
            XCTAssertEqual(UserFeatureStore.renderRecentItemsJSON(f.recentItems), #"["i4","i\n9"]"#)
            XCTAssertEqual(counts.map(\.1), [2])

            // Ids that need no escapes (the path that writes the list with
            // plain stores): multi-byte UTF-8, one byte long, 60 positives
            // (the list stops at 50), next to a user whose list needs escapes.
            users.apply(Interaction(userId: "u\"1", itemId: "\u{1F600}x", action: .share, ts: ts + 9))
            for k in 0..<60 {
                users.apply(Interaction(userId: "plain", itemId: k % 7 == 0 ? "\u{E9}\(k)" : "i\(k)", action: .click, ts: ts + Int64(k)))
            }
            users.apply(Interaction(userId: "one", itemId: "z", action: .like, ts: ts))
            var plainWrite = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
            XCTAssertEqual(renderer.renderUsers(users, into: &plainWrite, samples: &samples, counts: &counts), 3)
            var plainExpected = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
            for id in ["u\"1", "plain", "one"] {
                let f = users.features(of: id)!
                plainExpected.hashSet(keys.user(id), [
                    ("recent_items_50", UserFeatureStore.renderRecentItemsJSON(f.recentItems)),
                    ("interaction_count", String(f.interactionCount)), ("updated_ms", String(f.updatedMs)),
                ])
                if let feast { plainExpected.hashSet(rawKey: feast.userKey(id), feast.userFields(f)) }
            }
            XCTAssertEqual(plainWrite.operations, plainExpected.operations, "feast: \(feast != nil)")
            XCTAssertEqual(users.features(of: "plain")?.recentItems.count, 50)
        }
    }

    /// Checkpoints add their entries field by field (`beginHashSet` then
    /// `appendHashField`); the command must be the one `hashSet` builds from an array.
    func testFieldByFieldHashSetWritesWhatTheArrayFormWrites() {
        let task = TaskId(stage: .users, partition: 0)
        let fields: [(String, [UInt8])] = [("u1", [1, 0, 255]), ("caf\u{E9}", []), ("u\u{0}", Array("x".utf8))]
        var expected = FencedWrite(task: task, epochKey: "e", epoch: 3)
        expected.hashSet("ckpt", fields)
        var actual = FencedWrite(task: task, epochKey: "e", epoch: 3)
        actual.beginHashSet("ckpt", fieldCount: fields.count)
        for (field, value) in fields { actual.appendHashField(field, value) }
        XCTAssertEqual(actual.command, expected.command)
        XCTAssertEqual(actual.operationCount, 1)
        var empty = FencedWrite(task: task, epochKey: "e", epoch: 3)
        empty.beginHashSet("ckpt", fieldCount: 0)
        XCTAssertTrue(empty.isEmpty)
    }
}
