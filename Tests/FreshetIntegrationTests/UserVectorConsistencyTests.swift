import Foundation
import FreshetEmbeddings
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import FreshetWorkload
import XCTest

/// Between two publications of a refresh, new items get fold-in vectors
/// from their owners (`embedding_kind: fold_in`), while a user vector is the
/// mean of the refresh's vectors (`embedding_kind: refresh`) of the first 10
/// of the user's `recent_items_50`. What Redis holds must let a reader
/// compute every user vector exactly from the item hashes: the same version,
/// the same mean. (Before the kinds were written, fold-ins carried the same
/// `embedding_version` as the refresh and nothing told a reader to leave
/// them out: a breaker found 102 of 139 users not equal to the mean of their
/// items as Redis served them; and a user whose first 10 became new items
/// only kept its old vector.)
final class UserVectorConsistencyTests: XCTestCase {
    func testEveryUserVectorIsTheMeanOfItsRefreshedItemsWhileNewItemsAreFoldedIn() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let dimension = EmbeddingsEndToEndTests.dimension
        // One publication only (publish_interval 1h): later refreshes are not
        // switched to, so new items stay fold-ins until the end of the test.
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: """
            embeddings:
              dimension: \(dimension)
              refresh_every: 500
              sync_interval: 200ms
              publish_interval: 1h
              examples: false
            """)
        let config = EmbeddingsEndToEndTests.plantedConfig()
        _ = try EmbeddingsEndToEndTests.produce(cluster, config)
        let run = try ScalingTests.startInstance(cluster, topology: topology, group: "fold", name: "fold")
        defer { run.signal(SIGKILL) }
        let redis = try RedisConnection(url: cluster.redisURL)
        func field(_ key: String, _ name: String) throws -> String? { try redis.command(["HGET", key, name]).string }
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 120, every: 0.5) {
            try EmbeddingsEndToEndTests.publishedItems(redis, prefix: "", items: config.items).count >= 100
        }, "the first refresh was published: " + run.logTail())
        let version = try XCTUnwrap(try field("item:i0", "embedding_version"))

        // New items, each liked after planted ones by users who have history.
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers))
        // An hour ahead of the clock, after every planted event: the new items
        // are at the head of their users' recent_items_50.
        let ts = Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000
        let newItems = (0..<12).map { "new-\($0)" }
        for u in 0..<90 {
            let user = PlantedPreferences.userId(u)
            // The first 30 users like every new item: none of their first 10
            // recent items is in the refresh, so they must have no vector.
            for (k, item) in (u < 30 ? newItems : [newItems[u % 12], newItems[(u + 5) % 12]]).enumerated() {
                let json = #"{"user_id":"\#(user)","item_id":"\#(item)","action":"click","ts":\#(ts + Int64(u * 10 + k))}"#
                try producer.produce(topic: "interactions", key: Array(user.utf8), value: Array(json.utf8))
            }
        }
        try producer.flush(timeoutMs: 30_000)

        var problems: [String] = []
        var withFoldIns = 0, users = 0, withoutVector = 0
        let consistent = try FaultInjection.waitUntil(timeout: 60, every: 1) {
            problems = []
            withFoldIns = 0
            users = 0
            withoutVector = 0
            for item in newItems where try field("item:\(item)", "embedding_kind") != "fold_in" {
                problems.append("item:\(item) has no fold-in yet")
            }
            for u in 0..<config.users {
                let key = "user:\(PlantedPreferences.userId(u))"
                guard let json = try field(key, "recent_items_50"),
                      let recent = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String] else { continue }
                var sum = [Float](repeating: 0, count: dimension)
                var n = 0
                for item in recent.prefix(10) {
                    switch try field("item:\(item)", "embedding_kind") {
                    case "refresh":
                        guard try field("item:\(item)", "embedding_version") == version,
                              let blob = try redis.command(["HGET", "item:\(item)", "embedding_\(dimension)d"]).bytes else {
                            problems.append("item:\(item) is not at version \(version)")
                            continue
                        }
                        for (k, x) in EmbeddingsEndToEndTests.floats(blob).enumerated() { sum[k] += x }
                        n += 1
                    case "fold_in":
                        withFoldIns += 1
                    default:
                        break
                    }
                }
                let stored = try redis.command(["HGET", key, "embedding_\(dimension)d"]).bytes.map(EmbeddingsEndToEndTests.floats)
                if n == 0 {
                    withoutVector += 1
                    if stored != nil { problems.append("\(key) has a vector but no refreshed item among its first 10") }
                    continue
                }
                users += 1
                let mean = sum.map { $0 / Float(n) }
                guard let stored, try field(key, "embedding_version") == version else {
                    problems.append("\(key) has no vector at version \(version)")
                    continue
                }
                if zip(stored, mean).contains(where: { abs($0 - $1) > 1e-5 }) {
                    problems.append("\(key) is not the mean of its first 10 recent items' refresh vectors")
                }
            }
            return problems.isEmpty && withFoldIns >= 80 && withoutVector >= 30
        }
        XCTAssertTrue(consistent, "\(problems.count) problems, e.g. \(problems.prefix(5)); users whose first 10 hold a fold-in: \(withFoldIns)")
        XCTAssertGreaterThan(users, 250, "user vectors were checked")
        XCTAssertGreaterThanOrEqual(withoutVector, 30, "users whose first 10 are all new items (their old vectors removed)")
        run.signal(SIGTERM)
        XCTAssertEqual(try run.wait(timeout: 60), 0, run.logTail())
    }
}
