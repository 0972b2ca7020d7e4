import Foundation
import FreshetEmbeddings
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import XCTest

/// The examples topic through the real processor (broker, Redis, `freshet
/// run`), in phases: counts first, then impressions, then engagements, then
/// events far ahead in time on every source partition so the watermark
/// closes every window. Every example is
/// asserted exactly: label, action, position, request, impression time,
/// `late`, and the serving features as of the impression.
final class ExamplesJoinTests: XCTestCase {
    static let users = 6
    static let partitions: Int32 = 4
    static let windowMs: Int64 = 600_000

    struct Shape: Hashable, CustomStringConvertible {
        var user: String, item: String, label: Int, action: String?, position: Int?, request: String?
        var impressionTs: Int64?, eventTs: Int64, late: Bool, features: [Int64]?
        var description: String {
            "\(user)/\(item) label \(label) \(action ?? "-") pos \(position.map(String.init) ?? "-") req \(request ?? "-") imp \(impressionTs.map(String.init) ?? "-") ts \(eventTs) late \(late) f \(features.map { "\($0)" } ?? "-")"
        }
        init(_ e: TrainingExample) {
            user = e.userId; item = e.itemId; label = e.label.rawValue; action = e.action?.name
            position = e.position; request = e.requestId; impressionTs = e.impressionTs; eventTs = e.eventTs; late = e.late
            features = e.features.map { [$0.interactionCount, $0.popularity7d, $0.impressions7d] }
        }
        init(user: String, item: String, label: Int, action: String?, position: Int?, request: String?,
             impressionTs: Int64?, eventTs: Int64, late: Bool, features: [Int64]?) {
            self.user = user; self.item = item; self.label = label; self.action = action; self.position = position
            self.request = request; self.impressionTs = impressionTs; self.eventTs = eventTs; self.late = late
            self.features = features
        }
    }

    func interaction(_ u: String, _ i: String, _ action: String, _ ts: Int64, request: String? = nil) -> [UInt8] {
        let r = request.map { ",\"request_id\":\"\($0)\"" } ?? ""
        return Array("{\"user_id\":\"\(u)\",\"item_id\":\"\(i)\",\"action\":\"\(action)\",\"ts\":\(ts)\(r)}".utf8)
    }

    func testExamplesCarryTheImpressionContextAndServingFeaturesExactly() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "interactions", partitions: Self.partitions),
                                NewTopic(name: "impressions", partitions: Self.partitions)])
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: """
            redis:
              key_prefix: "ex:"
            event_time:
              idle_timeout: 1h
            embeddings:
              dimension: 8
              join_window: 10m
            """)
        let run = try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                           "--group", "examples", "--admin-port=-1"],
                                          logPath: "\(cluster.directory)/examples.log")
        defer { run.signal(SIGKILL) }
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers))
        let redis = try RedisConnection(url: cluster.redisURL)
        // Ten seconds into an hour (the window's pane): every phase-A..C event
        // and the watermark while they are processed share one pane, so the
        // item features as of the impression do not depend on pane boundaries.
        let hour: Int64 = 3_600_000
        let base = (Int64(Date().timeIntervalSince1970 * 1000) - 3 * hour) / hour * hour + 10_000
        let users = (0..<Self.users).map { "eu\($0)" }
        func item(_ u: Int, _ k: Int) -> String { "ei\(u)-\(k)" }

        // Every source partition reports from the start (no idleness here), so
        // the item tasks' watermark is the minimum over all eight sources and
        // stays below every window's close until phase D.
        for p in 0..<Self.partitions {
            try producer.produce(topic: "interactions", partition: p, key: Array("clock\(p)".utf8),
                                 value: interaction("clock\(p)", "clock-item", "click", base))
            let json = "{\"user_id\":\"clock\(p)\",\"items_shown\":[\"clock-item\"],\"ts\":\(base)}"
            try producer.produce(topic: "impressions", partition: p, key: Array("clock\(p)".utf8), value: Array(json.utf8))
            // Probe items (40 in all, so every item partition holds some):
            // their popularity_7d shows in Redis only once their item task
            // has a watermark, i.e. has heard from all eight sources.
            for k in 0..<10 {
                try producer.produce(topic: "interactions", partition: p, key: Array("clock\(p)".utf8),
                                     value: interaction("clock\(p)", "probe-\(p)-\(k)", "click", base))
            }
        }
        // Phase A: user u clicks u + 1 items, one of them the item it will be
        // shown at position 4 (its popularity_7d is then 1 at the impression).
        for (u, user) in users.enumerated() {
            try producer.produce(topic: "interactions", key: Array(user.utf8), value: interaction(user, item(u, 4), "click", base + 1_000))
            for j in 0..<u {
                try producer.produce(topic: "interactions", key: Array(user.utf8), value: interaction(user, "a\(u)-\(j)", "watch", base + 2_000 + Int64(j)))
            }
        }
        try producer.flush(timeoutMs: 30_000)
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 90) {
            try users.enumerated().allSatisfy { u, user in
                try redis.command(["HGET", "ex:user:\(user)", "interaction_count"]).string == String(u + 1)
            }
        }, "phase A counted: " + run.logTail())
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 90) {
            try (0..<Self.partitions).allSatisfy { p in
                try (0..<10).allSatisfy { k in
                    try redis.command(["HGET", "ex:item:probe-\(p)-\(k)", "popularity_7d"]).string == "1"
                }
            }
        }, "every item task has a watermark: " + run.logTail())

        // Phase B: one impression of five items per user.
        let impressionTs = base + 600_000
        for (u, user) in users.enumerated() {
            let shown = (0..<5).map { "\"\(item(u, $0))\"" }.joined(separator: ",")
            let json = "{\"request_id\":\"req-\(u)\",\"user_id\":\"\(user)\",\"items_shown\":[\(shown)],\"positions\":[0,1,2,3,4],\"ts\":\(impressionTs)}"
            try producer.produce(topic: "impressions", key: Array(user.utf8), value: Array(json.utf8))
        }
        // The counts stage holds the impressions (and, for the join, every
        // interaction) until the watermark passes them. Before it releases
        // them: the item tasks apply each impression directly (waited for
        // here), then the user clicks item 2, 2 s after the impression, which
        // the item tasks count at once. The examples' item features are as of
        // the impression (recorded when the item task applied it), so that
        // click, the example's own label, is not in its popularity_7d (read
        // at the release, as before, it was: the label leaked in).
        try producer.flush(timeoutMs: 30_000)
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 90) {
            try users.indices.allSatisfy { u in
                try redis.command(["HGET", "ex:item:\(item(u, 2))", "impressions_7d"]).string == "1"
            }
        }, "phase B applied to the item features: " + run.logTail())
        for (u, user) in users.enumerated() {
            try producer.produce(topic: "interactions", key: Array(user.utf8), value: interaction(user, item(u, 2), "click", impressionTs + 2_000))
        }
        try producer.flush(timeoutMs: 30_000)
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 90) {
            try users.enumerated().allSatisfy { u, user in
                try redis.command(["HGET", "ex:user:\(user)", "interaction_count"]).string == String(u + 2)
            }
        }, "phase B's clicks counted: " + run.logTail())
        // An event 10 s after them on every source partition releases them,
        // so they reach the item tasks' join before phase C.
        for p in 0..<Self.partitions {
            try producer.produce(topic: "interactions", partition: p, key: Array("clock\(p)".utf8),
                                 value: interaction("clock\(p)", "clock-item", "click", impressionTs + 10_000))
            let json = "{\"user_id\":\"clock\(p)\",\"items_shown\":[\"clock-item\"],\"ts\":\(impressionTs + 10_000)}"
            try producer.produce(topic: "impressions", partition: p, key: Array("clock\(p)".utf8), value: Array(json.utf8))
        }
        try producer.flush(timeoutMs: 30_000)
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 90) {
            try users.indices.allSatisfy { u in
                try redis.command(["HGET", "ex:item:\(item(u, 2))", "popularity_7d"]).string == "1"
            }
        }, "phase B's clicks in the item features: " + run.logTail())

        // Phase C: per user, a skip of item 1, a click on item 0 inside the
        // window, a click on item 3 after it (20 minutes after the
        // impression: late for the join); item 4 gets nothing (item 2 was
        // clicked in phase B). Sent in time order across users, so none is
        // late for its partition's watermark (a late event counts and joins
        // from when it is known: LateEventScheduleTests).
        for (u, user) in users.enumerated() {
            try producer.produce(topic: "interactions", key: Array(user.utf8), value: interaction(user, item(u, 1), "skip", impressionTs + 30_000))
        }
        for (u, user) in users.enumerated() {
            try producer.produce(topic: "interactions", key: Array(user.utf8), value: interaction(user, item(u, 0), "click", impressionTs + 60_000))
        }
        for (u, user) in users.enumerated() {
            try producer.produce(topic: "interactions", key: Array(user.utf8), value: interaction(user, item(u, 3), "like", impressionTs + 1_200_000))
        }
        try producer.flush(timeoutMs: 30_000)
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 90) {
            try users.enumerated().allSatisfy { u, user in
                try redis.command(["HGET", "ex:user:\(user)", "interaction_count"]).string == String(u + 4)
            }
        }, "phase C counted: " + run.logTail())

        // Phase D: an event two hours ahead on every source partition moves
        // the watermark past every window (the clocks' own examples are ignored).
        let clockTs = impressionTs + 2 * 3_600_000
        for p in 0..<Self.partitions {
            try producer.produce(topic: "interactions", partition: p, key: Array("clock\(p)".utf8),
                                 value: interaction("clock\(p)", "clock-item", "click", clockTs))
            let json = "{\"user_id\":\"clock\(p)\",\"items_shown\":[\"clock-item\"],\"ts\":\(clockTs)}"
            try producer.produce(topic: "impressions", partition: p, key: Array("clock\(p)".utf8), value: Array(json.utf8))
        }
        try producer.flush(timeoutMs: 30_000)

        var expected: [Shape] = []
        for (u, user) in users.enumerated() {
            let count = Int64(u + 1)
            // Features as of the impression: the item's events applied before
            // it, the impression itself included; phase B's click on item 2
            // (after the impression) is not.
            func f(_ popularity: Int64) -> [Int64] { [count, popularity, 1] }
            let req = "req-\(u)"
            expected.append(Shape(user: user, item: item(u, 0), label: 1, action: "click", position: 0, request: req,
                                  impressionTs: impressionTs, eventTs: impressionTs + 60_000, late: false, features: f(0)))
            expected.append(Shape(user: user, item: item(u, 1), label: 0, action: "skip", position: 1, request: req,
                                  impressionTs: impressionTs, eventTs: impressionTs + 30_000, late: false, features: f(0)))
            expected.append(Shape(user: user, item: item(u, 2), label: 1, action: "click", position: 2, request: req,
                                  impressionTs: impressionTs, eventTs: impressionTs + 2_000, late: false, features: f(0)))
            expected.append(Shape(user: user, item: item(u, 3), label: 0, action: nil, position: 3, request: req,
                                  impressionTs: impressionTs, eventTs: impressionTs + Self.windowMs, late: false, features: f(0)))
            expected.append(Shape(user: user, item: item(u, 3), label: 1, action: "like", position: 3, request: req,
                                  impressionTs: impressionTs, eventTs: impressionTs + 1_200_000, late: true, features: f(0)))
            expected.append(Shape(user: user, item: item(u, 4), label: 0, action: nil, position: 4, request: req,
                                  impressionTs: impressionTs, eventTs: impressionTs + Self.windowMs, late: false, features: f(1)))
            // Phase A's interactions: examples without impression context.
            expected.append(Shape(user: user, item: item(u, 4), label: 1, action: "click", position: nil, request: nil,
                                  impressionTs: nil, eventTs: base + 1_000, late: false, features: nil))
            for j in 0..<u {
                expected.append(Shape(user: user, item: "a\(u)-\(j)", label: 1, action: "watch", position: nil, request: nil,
                                      impressionTs: nil, eventTs: base + 2_000 + Int64(j), late: false, features: nil))
            }
        }
        var got: [Shape] = []
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 120, every: 1) {
            got = try EmbeddingsEndToEndTests.readExamples(topic: "freshet-examples", brokers: cluster.brokers)
                .filter { !$0.userId.hasPrefix("clock") }.map(Shape.init)
            return got.count >= expected.count
        }, "examples written: \(got.count) of \(expected.count); " + run.logTail())
        XCTAssertEqual(got.sorted { $0.description < $1.description }.map(\.description),
                       expected.sorted { $0.description < $1.description }.map(\.description))
        run.signal(SIGTERM)
        XCTAssertEqual(try run.wait(timeout: 60), 0, run.logTail())
    }
}
