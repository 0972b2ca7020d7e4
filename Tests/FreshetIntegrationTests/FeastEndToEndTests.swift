import Foundation
import FreshetCore
import FreshetFeast
import FreshetRedis
import FreshetTestSupport
import FreshetWorkload
import XCTest

/// An unmodified Feast client reads Freshet's features: Feast (from PyPI, in
/// `.freshet/feast-venv`) applies the shipped `feast_repo/` against the test
/// Redis, a bounded Freshet run writes its rows, and `get_online_features`
/// must return the oracle's value for every feature of every entity, including
/// a non-ASCII id, zero counts, and an item whose counts fell when its pane
/// left the window (its `_ts` is the as-of time of that fall).
final class FeastEndToEndTests: XCTestCase {
    static let hour: Int64 = 3_600_000

    func testGetOnlineFeaturesReturnsTheOraclesFeatures() throws {
        let python = try FeastInstall.python()
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var config = SyntheticConfig(seed: 11, users: 150, items: 300, startMs: now - 86_400_000, spanMs: 86_400_000, nowMs: now)
        config.outOfOrderMs = 60_000
        let old = now - 9 * 86_400_000
        // First in their partitions, so counted before the watermark passes them.
        let hand = [
            Self.click(user: "u-old", item: "i-old", ts: old),
            Self.impression(user: "u-old", items: ["i-old"], ts: old + 1),
            Self.click(user: "ué-漢", item: "ítem-ñ", ts: now - 3 * Self.hour),
            Self.click(user: "ué-漢", item: "i-9", ts: now - 2 * Self.hour),
            Self.impression(user: "ué-漢", items: ["imp-only", "ítem-ñ"], ts: now - 2 * Self.hour + 5),
            Self.impression(user: "u7", items: ["imp-only"], ts: now - Self.hour),
        ]
        let events = hand + Array(SyntheticStream(config: config, count: 3_000))
        let produced = try EndToEndTests.produce(events, to: cluster, randomKeys: false)
        let oracle = FeatureOracle(events: produced)
        XCTAssertEqual(oracle.items["imp-only"]?.popularity, 0, "an item that is only impressed")
        XCTAssertEqual(oracle.items["i-old"].map { [$0.popularity, $0.impressions] }, [0, 0], "counts that left the window")

        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: """
        feast:
          enabled: true
          project: recsys
        embeddings:
          dimension: \(Self.embeddingDimension)
        """)
        let run = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                           "--group", "feast", "--stop-at-end", "--admin-port=-1"],
                                          logPath: "\(cluster.directory)/freshet.log")
        XCTAssertEqual(try run.wait(timeout: 300), 0, run.logTail())

        let users = oracle.users.keys.sorted() + ["u-unknown"]
        let items = oracle.items.keys.sorted()
        let read = try Self.readThroughFeast(python: python, cluster: cluster, users: users, items: items)
        let redis = try RedisConnection(url: cluster.redisURL)

        var mismatches: [String] = []
        var embeddings = 0
        let embeddingField = "embedding_\(Self.embeddingDimension)d"
        for (id, expected) in oracle.users {
            guard let row = read.users[id] else { mismatches.append("user \(id): not in Feast's reply"); continue }
            if row.strings("recent_items_50") != expected.recent { mismatches.append("user \(id) recent: \(row["recent_items_50"] ?? "nil") vs \(expected.recent)") }
            if row.int("interaction_count") != expected.count { mismatches.append("user \(id) count: \(row["interaction_count"] ?? "nil") vs \(expected.count)") }
            if row.int("_ts_ms") != expected.updated { mismatches.append("user \(id) _ts: \(row["_ts_ms"] ?? "nil") vs \(expected.updated)") }
            let blob = try redis.command(["HGET", "user:\(id)", embeddingField]).bytes
            if row.floats("embedding") != blob.map(Self.floats) { mismatches.append("user \(id): embedding differs from user:\(id)") }
            if blob != nil { embeddings += 1 }
        }
        for (id, expected) in oracle.items {
            guard let row = read.items[id] else { mismatches.append("item \(id): not in Feast's reply"); continue }
            if row.int("popularity_7d") != expected.popularity { mismatches.append("item \(id) popularity: \(row["popularity_7d"] ?? "nil") vs \(expected.popularity)") }
            if row.int("impressions_7d") != expected.impressions { mismatches.append("item \(id) impressions: \(row["impressions_7d"] ?? "nil") vs \(expected.impressions)") }
            let asOf = Self.asOf(item: id, updated: expected.updated, events: produced, watermark: oracle.watermark)
            if row.int("_ts_ms") != asOf { mismatches.append("item \(id) _ts: \(row["_ts_ms"] ?? "nil") vs \(asOf)") }
            let blob = try redis.command(["HGET", "item:\(id)", embeddingField]).bytes
            if row.floats("embedding") != blob.map(Self.floats) { mismatches.append("item \(id): embedding differs from item:\(id)") }
            if blob != nil { embeddings += 1 }
        }
        XCTAssertEqual(mismatches.count, 0, "Feast reads other values than the oracle's:\n\(mismatches.prefix(8).joined(separator: "\n"))")
        XCTAssertGreaterThan(embeddings, 100, "embeddings were compared")
        XCTAssertEqual(read.items["i-old"]?.int("_ts_ms"), Self.asOf(item: "i-old", updated: old + 1, events: produced, watermark: oracle.watermark))
        XCTAssertGreaterThan(read.items["i-old"]?.int("_ts_ms") ?? 0, old + 1, "i-old's _ts moved to the time its counts fell")
        XCTAssertEqual(read.users["ué-漢"]?.strings("recent_items_50"), ["i-9", "ítem-ñ"], "a non-ASCII id and item ids")
        let unknown = try XCTUnwrap(read.users["u-unknown"])
        XCTAssertTrue(["recent_items_50", "interaction_count", "embedding"].allSatisfy { unknown[$0] is NSNull }, "\(unknown)")
        try Self.assertFeastRowsMatch(oracle, redis: redis)
        // Freshet's own hashes are still written by default (feast.freshet_hashes: true).
        try EndToEndTests.assertRedisMatches(oracle, redis: redis)
    }

    // MARK: - Helpers

    /// Set in the topology (as the shipped feast_repo declares: vector_length=64); Freshet's hashes name the field after it.
    static let embeddingDimension = 64

    /// Compares the raw Feast rows in Redis with the oracle, byte for byte
    /// (no Feast needed: the encodings are FEAST_LAYOUT.md's, checked by
    /// FeastLayoutTests and by the test above). Item `_ts` is checked to lie
    /// between updated_ms and the final watermark's pane end: whether a very
    /// late event was counted (and later expired) depends on arrival timing.
    static func assertFeastRowsMatch(_ oracle: FeatureOracle, redis: any FeatureStoreReading,
                                     file: StaticString = #filePath, line: UInt = #line) throws {
        func field(_ view: String, _ feature: String) -> [UInt8] { FeastFieldName.feature(view: view, feature: feature) }
        var mismatches: [String] = []
        for (id, expected) in oracle.users {
            let key = FeastEntityKey.encode(joinKey: "user_id", value: id, project: "recsys")
            let reply = try redis.command([Array("HMGET".utf8), key, FeastFieldName.timestamp(view: "user_features"),
                                           field("user_features", "recent_items_50"), field("user_features", "interaction_count")])
            let want = [FeastValue.timestamp(epochMs: expected.updated), FeastValue.stringList(expected.recent), FeastValue.int64(expected.count)]
            if reply.array?.map(\.bytes) != want { mismatches.append("user \(id)") }
        }
        let topEnd = (floorDiv(oracle.watermark, hour) + 1) * hour
        for (id, expected) in oracle.items {
            let key = FeastEntityKey.encode(joinKey: "item_id", value: id, project: "recsys")
            let reply = try redis.command([Array("HMGET".utf8), key, FeastFieldName.timestamp(view: "item_features"),
                                           field("item_features", "popularity_7d"), field("item_features", "impressions_7d")])
            let values = reply.array?.map(\.bytes) ?? []
            guard values.count == 3, values[1] == FeastValue.int64(expected.popularity), values[2] == FeastValue.int64(expected.impressions),
                  let ts = values[0], let asOf = decodeTimestampMs(ts), asOf >= expected.updated, asOf <= max(topEnd, expected.updated) else {
                mismatches.append("item \(id): \(values) vs \(expected)")
                continue
            }
        }
        XCTAssertEqual(mismatches.count, 0, "Feast rows differ from the oracle:\n\(mismatches.prefix(8).joined(separator: "\n"))",
                       file: file, line: line)
    }

    /// Decodes a `google.protobuf.Timestamp` (fields 1 and 2 as varints) to epoch milliseconds.
    static func decodeTimestampMs(_ bytes: [UInt8]) -> Int64? {
        var seconds: Int64 = 0
        var nanos: Int64 = 0
        var index = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.count, shift < 64 {
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while index < bytes.count {
            guard let tag = varint(), let value = varint() else { return nil }
            switch tag {
            case 0x08: seconds = Int64(bitPattern: value)
            case 0x10: nanos = Int64(bitPattern: value)
            default: return nil
            }
        }
        return seconds * 1000 + nanos / 1_000_000
    }


    struct FeastRead { var users: [String: [String: Any]]; var items: [String: [String: Any]] }

    /// Runs scripts/feast_online_read.py (feast apply + get_online_features) and parses its JSON.
    static func readThroughFeast(python: String, cluster: LocalCluster, users: [String], items: [String],
                                 redis: String? = nil, clusterMode: Bool = false) throws -> FeastRead {
        let requests = "\(cluster.directory)/feast-requests.json"
        let data = try JSONSerialization.data(withJSONObject: ["users": users, "items": items])
        try data.write(to: URL(fileURLWithPath: requests))
        let outPath = "\(cluster.directory)/feast-read.json"
        let log = "\(cluster.directory)/feast-read.log"
        let arguments = ["\(LocalCluster.packageRoot)/scripts/feast_online_read.py", "--repo", "\(LocalCluster.packageRoot)/feast_repo",
                         "--redis", redis ?? "127.0.0.1:\(cluster.redisPort)", "--requests", requests] + (clusterMode ? ["--cluster"] : [])
        let quoted = ([python] + arguments).map { "'\($0)'" }.joined(separator: " ")
        let child = try ChildProcess("/bin/bash", ["-c", "\(quoted) > '\(outPath)'"], logPath: log)
        let status = try child.wait(timeout: 300)
        guard status == 0 else { throw TestFailure("feast_online_read.py exited \(status):\n\(child.logTail())") }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: outPath)))
        guard let object = json as? [String: Any], let u = object["users"] as? [String: [String: Any]],
              let i = object["items"] as? [String: [String: Any]] else { throw TestFailure("unexpected reply \(json)") }
        return FeastRead(users: u, items: i)
    }

    /// The oracle of an item row's `_ts`: the later of updated_ms and the start
    /// of the pane whose arrival pushed the item's newest counted pane out of the
    /// window (every event here is counted: none arrives after its pane left).
    static func asOf(item: String, updated: Int64, events: [FeatureOracle.Event], watermark: Int64) -> Int64 {
        let top = floorDiv(watermark, hour)
        var result = updated
        for event in events {
            let ts: Int64
            switch event.body {
            case .interaction(let i) where i.itemId == item && i.action.isPositive: ts = i.ts
            case .impression(let i) where i.itemsShown.contains(item): ts = i.ts
            default: continue
            }
            let pane = floorDiv(ts, hour)
            if pane + 168 <= top { result = max(result, (pane + 168) * hour) }
        }
        return result
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    static func floats(_ blob: [UInt8]) -> [Float] {
        stride(from: 0, to: blob.count, by: 4).map { k in
            Float(bitPattern: UInt32(blob[k]) | UInt32(blob[k + 1]) << 8 | UInt32(blob[k + 2]) << 16 | UInt32(blob[k + 3]) << 24)
        }
    }

    static func click(user: String, item: String, ts: Int64) -> SyntheticEvent {
        let json = #"{"user_id":"\#(user)","item_id":"\#(item)","action":"click","ts":\#(ts)}"#
        return SyntheticEvent(topic: .interactions, key: user, json: Array(json.utf8), timestampMs: ts,
                              expected: .interaction(Interaction(userId: user, itemId: item, action: .click, ts: ts)))
    }

    static func impression(user: String, items: [String], ts: Int64) -> SyntheticEvent {
        let shown = items.map { "\"\($0)\"" }.joined(separator: ",")
        let json = #"{"request_id":"r-\#(ts)","user_id":"\#(user)","items_shown":[\#(shown)],"ts":\#(ts)}"#
        return SyntheticEvent(topic: .impressions, key: user, json: Array(json.utf8), timestampMs: ts,
                              expected: .impression(Impression(requestId: "r-\(ts)", userId: user, itemsShown: items, ts: ts)))
    }
}

extension Dictionary where Key == String, Value == Any {
    func int(_ key: String) -> Int64? { (self[key] as? NSNumber)?.int64Value }
    func strings(_ key: String) -> [String]? { self[key] as? [String] }
    func floats(_ key: String) -> [Float]? { (self[key] as? [NSNumber])?.map { Float($0.doubleValue) } }
}
