import Foundation
import FreshetEmbeddings
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import FreshetWorkload
import XCTest

/// Online embeddings through the real processor: what Redis serves is exactly
/// the trainer's own row (as checkpointed), for items and users, and every
/// example reaches `freshet-examples`.
final class EmbeddingsEndToEndTests: XCTestCase {
    func testPublishedEmbeddingsAreTheTrainersRows() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let config = PlantedConfig(users: 300, items: 200, clusters: 4, events: 6_000, impressions: true, seed: 9,
                                   startTs: now - 2 * 3_600_000, meanGapMs: 1_000)
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "interactions", partitions: 4), NewTopic(name: "impressions", partitions: 4)])
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers))
        var produced = 0
        for event in PlantedStream(config) {
            try producer.produce(topic: event.topic, key: Array(event.key.utf8), value: event.json)
            produced += 1
        }
        try producer.flush(timeoutMs: 30_000)

        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: "embeddings:\n  dimension: 32\n  user_admit_after: 8\n")
        let run = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                           "--group", "emb", "--stop-at-end", "--admin-port=-1"],
                                          logPath: "\(cluster.directory)/freshet.log")
        XCTAssertEqual(try run.wait(timeout: 180), 0, run.logTail())

        let redis = try RedisConnection(url: cluster.redisURL)
        let table = EmbeddingTable(EmbeddingTableConfig(name: "check", dimension: 32))
        var compared = 0
        for stage in ["items", "interactions"] {
            for partition in 0..<4 {
                let key = "freshet:emb:ckpt:\(stage)-\(partition):emb"
                for (id, row) in try redis.hgetall(key) {
                    try table.restoreRow(id, from: row)
                    guard let expected = table.vector(for: id) else { XCTFail("row \(id) did not restore"); continue }
                    let hash = stage == "items" ? "item:\(id)" : "user:\(id)"
                    guard let blob = try redis.command(["HGET", hash, "embedding_32d"]).bytes else {
                        XCTFail("\(hash) has no embedding_32d"); continue
                    }
                    XCTAssertEqual(blob.count, 32 * 4, "float32 little-endian, dimension x 4 bytes")
                    XCTAssertEqual(EmbeddingTable.floats(fromFloat32LittleEndian: blob), expected, "\(hash) serves the trainer's row")
                    if stage == "interactions" {
                        XCTAssertEqual(try redis.command(["HGET", hash, "embedding_kind"]).string, "trained")
                    }
                    compared += 1
                }
            }
        }
        XCTAssertGreaterThan(compared, 250, "item and user rows were published and checkpointed")

        // Users seen fewer than 8 times have no row yet: they are served the
        // pseudo-user vector (mean of their positive items' vectors, bias coordinate 1).
        var pseudo = 0
        for user in 0..<config.users {
            let hash = "user:u\(user)"
            guard try redis.command(["HGET", hash, "embedding_kind"]).string == "pseudo",
                  let blob = try redis.command(["HGET", hash, "embedding_32d"]).bytes else { continue }
            XCTAssertEqual(EmbeddingTable.floats(fromFloat32LittleEndian: blob).last, 1, "\(hash): bias coordinate of a pseudo-user")
            pseudo += 1
        }
        XCTAssertGreaterThan(pseudo, 0, "cold-start users are served a pseudo-user vector")
        let examples = try EndToEndTests.countRecords(topic: "freshet-examples", brokers: cluster.brokers, lines: true)
        XCTAssertGreaterThan(examples, produced / 2, "examples reach freshet-examples")
    }
}
