import Foundation
import FreshetCore
import FreshetEmbeddings
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import XCTest

/// The examples' `interaction_count` with two `freshet run` instances in one
/// group, where a user's interactions task and the item task that joins the
/// user's impression run in different instances: every impression example
/// carries exactly the user's positives known by the impression's time (event
/// time ≤ the impression's; a late one from just past its partition's watermark)
/// (it used to be -1 there, and the count as last flushed, whatever the
/// impression's time, in the same instance).
final class ExamplesAcrossInstancesTests: XCTestCase {
    static let partitions: Int32 = 4

    func testEveryImpressionCarriesTheUsersCountAsOfItsTimeAcrossInstances() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "interactions", partitions: Self.partitions),
                                NewTopic(name: "impressions", partitions: Self.partitions)])
        // No idleness: the watermark is the minimum over every source partition.
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: """
            event_time:
              idle_timeout: 1h
            embeddings:
              dimension: 8
              join_window: 10m
            """)
        let ports = try (0..<2).map { _ in try LocalCluster.freePort() }
        let runs = try (0..<2).map { n in
            try ScalingTests.startInstance(cluster, topology: topology, group: "across", name: "across-\(n)", adminPort: ports[n])
        }
        defer { for run in runs { run.signal(SIGKILL) } }
        // The group settled: each instance owns tasks, every source and item
        // partition has one owner (the counts stage's too, where it runs).
        let stages = ["interactions", "impressions", "items"]
        let base = Set(stages.flatMap { stage in (0..<Self.partitions).map { "\(stage)-\($0)" } })
        let snapshots = try AdminTasks.waitUntil(ports: ports, timeout: 120, "the group settles over two instances") { snapshots in
            let owned = snapshots.map(\.owned)
            return snapshots.allSatisfy { $0.memberOfGroup && !$0.owned.isEmpty }
                && owned[0].isDisjoint(with: owned[1]) && base.isSubset(of: owned[0].union(owned[1]))
        }
        func owner(_ task: String) -> Int? { snapshots.firstIndex { $0.owned.contains(task) } }

        let hour: Int64 = 3_600_000
        let minute: Int64 = 60_000
        let t0 = (Int64(Date().timeIntervalSince1970 * 1000) - 3 * hour) / hour * hour + 10_000
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers))
        func partition(_ key: String) -> Int32 { KafkaProducer.partition(forKey: Array(key.utf8), partitionCount: Self.partitions) }
        // Each interactions partition's watermark as the records are sent, for
        // when each positive is known (a late one: just past the watermark).
        var watermarks: [Int32: BoundedOutOfOrdernessWatermark] = [:]
        var knownPositives: [String: [Int64]] = [:]
        func send(_ topic: String, _ user: String, _ json: String, ts: Int64, positive: Bool = false) throws {
            try producer.produce(topic: topic, partition: partition(user), key: Array(user.utf8), value: Array(json.utf8))
            guard topic == "interactions" else { return }
            watermarks[partition(user), default: BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)].observe(ts)
            if positive { knownPositives[user, default: []].append(watermarks[partition(user)]?.knownAt(ts) ?? ts) }
        }
        // Per user u: positives at minutes 1, 3, 5 (... u % 3 + 2 of them, a
        // skip at minute 2 besides), arriving newest first (so late, beyond
        // the 5 s bound: known from just past their partition's watermark),
        // and impressions at minutes 0, 3 (equal to a positive), 4 and 20,
        // each of items no one engages with.
        var impressions: [(request: String, user: String, ts: Int64)] = []
        var impressed: [(user: String, item: String, request: String)] = []
        for u in 0..<24 {
            let user = "xu\(u)"
            let positives = (0..<(u % 3 + 2)).map { t0 + Int64(1 + 2 * $0) * minute }
            for (k, ts) in positives.enumerated().reversed() {
                try send("interactions", user, #"{"user_id":"\#(user)","item_id":"seen-\#(u)-\#(k)","action":"click","ts":\#(ts)}"#,
                         ts: ts, positive: true)
            }
            try send("interactions", user, #"{"user_id":"\#(user)","item_id":"skipped-\#(u)","action":"skip","ts":\#(t0 + 2 * minute)}"#,
                     ts: t0 + 2 * minute)
            for at in [0, 3, 4, 20] as [Int64] {
                let ts = t0 + at * minute
                let request = "\(user)-at\(at)"
                let items = (0..<2).map { "shown-\(u)-\(at)-\($0)" }
                try send("impressions", user, #"{"request_id":"\#(request)","user_id":"\#(user)","items_shown":["\#(items[0])","\#(items[1])"],"ts":\#(ts)}"#,
                         ts: ts)
                impressions.append((request, user, ts))
                for item in items { impressed.append((user, item, request)) }
            }
        }
        // The user's positives known by the impression's time.
        var expected: [String: Int64] = [:]
        for m in impressions { expected[m.request] = Int64((knownPositives[m.user] ?? []).filter { $0 <= m.ts }.count) }
        // Two hours later on every source partition: the watermark closes every window.
        for p in 0..<Self.partitions {
            try producer.produce(topic: "interactions", partition: p, key: nil,
                                 value: Array(#"{"user_id":"clock\#(p)","item_id":"clock","action":"skip","ts":\#(t0 + 2 * hour)}"#.utf8))
            try producer.produce(topic: "impressions", partition: p, key: nil,
                                 value: Array(#"{"user_id":"clock\#(p)","items_shown":["clock"],"ts":\#(t0 + 2 * hour)}"#.utf8))
        }
        try producer.flush(timeoutMs: 30_000)

        // The case this test is about occurs: a user's owner and the owner of
        // an item the user was shown are different instances.
        let remote = impressed.filter { owner("interactions-\(partition($0.user))") != owner("items-\(partition($0.item))") }
        XCTAssertFalse(remote.isEmpty, "no impressed item's owner differs from its user's owner: \(snapshots)")

        var examples: [TrainingExample] = []
        XCTAssertTrue(try FaultInjection.waitUntil(timeout: 120, every: 1) {
            examples = try EmbeddingsEndToEndTests.readExamples(topic: "freshet-examples", brokers: cluster.brokers)
                .filter { $0.userId.hasPrefix("xu") && $0.impressionTs != nil }
            return examples.count >= impressed.count
        }, "impression examples written: \(examples.count) of \(impressed.count); " + runs.map { $0.logTail() }.joined(separator: "\n"))
        var got: [String: [Int64]] = [:]
        for e in examples { got[e.requestId ?? "-", default: []].append(e.features?.interactionCount ?? -99) }
        var problems: [String] = []
        for (request, count) in expected.sorted(by: { $0.key < $1.key }) where got[request] != [count, count] {
            problems.append("\(request): expected \(count) on both items, got \(got[request] ?? [])")
        }
        XCTAssertTrue(problems.isEmpty, "\(problems.count) impressions with a wrong interaction_count (\(remote.count) of \(impressed.count) impressed items are owned away from their user):\n"
                      + problems.prefix(20).joined(separator: "\n"))
        XCTAssertEqual(examples.count, impressed.count, "one example per impressed item")
        for run in runs { run.signal(SIGTERM) }
        for run in runs { XCTAssertEqual(try run.wait(timeout: 60), 0, run.logTail()) }
    }
}
