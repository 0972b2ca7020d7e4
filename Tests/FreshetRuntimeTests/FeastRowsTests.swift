import Foundation
import FreshetCore
import FreshetFeast
import FreshetFeatures
import FreshetRedis
import FreshetTestSupport
@testable import FreshetRuntime
import XCTest

/// Feast rows: the topology section, and rows going through the same fenced,
/// idempotent write path as Freshet's own hashes (real Redis).
final class FeastRowsTests: XCTestCase {
    func testFeastSectionIsReadAndCheckedWithPaths() throws {
        let topology = try TopologyLoader.parse(yaml: """
        feast:
          enabled: true
          project: shop
          freshet_hashes: false
          user_view:
            name: users_v
            features:
              interaction_count: clicks
        """)
        XCTAssertTrue(topology.feast.enabled)
        XCTAssertEqual(topology.feast.project, "shop")
        XCTAssertFalse(topology.feast.freshetHashes)
        XCTAssertEqual(topology.feast.user.name, "users_v")
        XCTAssertEqual(topology.feast.user.entity, "user_id")
        XCTAssertEqual(topology.feast.user.features, ["interaction_count": "clicks"], "a features map replaces the default")
        XCTAssertEqual(topology.feast.item, Topology.Feast().item)

        let refused: [(String, String)] = [
            ("feast:\n  freshet_hashes: false\n", "feast.freshet_hashes"),
            ("feast:\n  item_view:\n    features:\n      recent_items_50: r\n", "feast.item_view.features.recent_items_50"),
            ("feast:\n  user_view:\n    features:\n      embedding: \"\"\n", "feast.user_view.features.embedding"),
            ("feast:\n  views: {}\n", "feast.views"),
        ]
        for (yaml, path) in refused {
            XCTAssertThrowsError(try TopologyLoader.parse(yaml: yaml), yaml) { error in
                XCTAssertEqual((error as? TopologyError)?.path, path, "\(error)")
            }
        }
    }

    func testRowsAreTheDocumentedBytes() {
        let rows = FeastRows(Topology.Feast())
        XCTAssertEqual(rows.userKey("u1"), FeastEntityKey.encode(joinKey: "user_id", value: "u1", project: "recsys"))
        let user = rows.userFields(UserFeatures(recentItems: ["i9", "i4", "i17"], interactionCount: 7, updatedMs: 1_767_225_600_500))
        XCTAssertEqual(user.map(\.0), [Array("_ts:user_features".utf8), [0xc5, 0x8c, 0x67, 0x0a], [0x94, 0x02, 0x15, 0xc1]])
        XCTAssertEqual(user.map(\.1), [FeastValue.timestamp(epochMs: 1_767_225_600_500), FeastValue.stringList(["i9", "i4", "i17"]),
                                       [0x20, 0x07]])
        // A zero count is written (Feast reads a missing field as null, not 0); _ts is the as-of time.
        let item = rows.itemFields(ItemFeatures(popularity7d: 0, impressions7d: 3, updatedMs: 10, asOfMs: 3_600_000,
                                                trendingLog2Score: nil))
        XCTAssertEqual(item.map(\.0), [Array("_ts:item_features".utf8), [0xd6, 0x0f, 0x93, 0x75], [0x6e, 0x66, 0x54, 0xa2]])
        XCTAssertEqual(item.map(\.1), [FeastValue.timestamp(epochMs: 3_600_000), [0x20, 0x00], [0x20, 0x03]])
        XCTAssertEqual(rows.itemEmbeddingField, [0xe2, 0xd3, 0x90, 0x7b])
    }

    func testRowsGoThroughTheFencedWritePath() throws {
        let cluster = try LocalCluster(withBroker: false)
        defer { cluster.stop() }
        let endpoint = try RedisEndpoint(url: cluster.redisURL)
        let redis = try RedisConnection(endpoint: endpoint)
        let task = TaskId(stage: .interactions, partition: 0)
        let keys = RedisKeys(prefix: "pre:", group: "g")
        XCTAssertEqual(try redis.command(["INCR", keys.epoch(task)]).int, 1)
        XCTAssertEqual(try redis.command(["INCR", keys.epoch(task)]).int, 2)

        var feast = Topology.Feast()
        feast.enabled = true
        feast.freshetHashes = false
        let renderer = FeatureRenderer(keys: keys, trendingTopK: 10, trending: TrendingDecay(), halfLifeMs: 3_600_000,
                                       feast: FeastRows(feast), freshetHashes: false)
        let store = UserFeatureStore()
        store.apply(Interaction(userId: "ué-漢", itemId: "i9", action: .click, ts: 1_767_225_600_500))
        var samples: [Int64] = []
        var counts: [(String, Int64)] = []
        var owner = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 2)
        renderer.renderUsers(store, into: &owner, samples: &samples, counts: &counts)
        store.apply(Interaction(userId: "ué-漢", itemId: "i4", action: .click, ts: 1_767_225_601_000))
        var zombie = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
        renderer.renderUsers(store, into: &zombie, samples: &samples, counts: &counts)

        let writer = try RedisWriter(endpoint: endpoint, observer: FencingTests.NullObserver())
        writer.start()
        defer { writer.stop() }
        writer.submit(RedisWriter.Batch(writes: [owner, zombie, owner]))
        writer.waitUntilDrained()
        XCTAssertEqual(writer.takeReport().fencedTasks.map(\.task), [task], "the zombie's Feast rows are refused")

        let key = FeastEntityKey.encode(joinKey: "user_id", value: "ué-漢", project: "recsys")
        XCTAssertFalse(key.starts(with: Array("pre:".utf8)), "no key prefix on Feast keys")
        let reply = try redis.command([Array("HMGET".utf8), key, Array("_ts:user_features".utf8),
                                       FeastFieldName.feature(view: "user_features", feature: "recent_items_50"),
                                       FeastFieldName.feature(view: "user_features", feature: "interaction_count")])
        XCTAssertEqual(reply.array?.map(\.bytes), [FeastValue.timestamp(epochMs: 1_767_225_600_500),
                                                    FeastValue.stringList(["i9"]), FeastValue.int64(1)],
                       "the owner's values, written twice (idempotent), not the zombie's")
        XCTAssertEqual(try redis.command(["EXISTS", "pre:user:ué-漢"]).int, 0, "freshet_hashes: false writes no user: hash")
    }
}
