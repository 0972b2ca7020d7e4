import Foundation
import FreshetCore
import FreshetEmbeddings
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import XCTest

/// Watermark alignment (`event_time.max_drift`) through the real processor,
/// broker and Redis: a pre-loaded backlog of one day of event time per source
/// partition, read the way a consumer reads a backlog (whole fetches of one
/// partition at a time; `interactions-0` also holds 3x the records of the
/// others, so at equal record rates it falls behind in event time). The
/// partitions' watermarks run far apart, and the item tasks' watermark is the
/// minimum over all of them, so without alignment the examples' join holds
/// most impressions of the backlog (measured here: 62% of the impressed items
/// at the peak with `max_drift: off`, 18% aligned). Alignment only decides
/// when records are read: every feature and every example must still be
/// exactly what the input implies.
final class AlignmentTests: XCTestCase {
    static let partitions: Int32 = 4
    static let windowMs: Int64 = 600_000
    static let hour: Int64 = 3_600_000

    struct Shape: Hashable, CustomStringConvertible {
        var user: String, item: String, label: Int, action: String?, position: Int?, request: String?
        var impressionTs: Int64?, eventTs: Int64, late: Bool
        var description: String {
            "\(user)/\(item) label \(label) \(action ?? "-") pos \(position.map(String.init) ?? "-") req \(request ?? "-") imp \(impressionTs.map(String.init) ?? "-") ts \(eventTs) late \(late)"
        }
    }

    struct Backlog {
        var events: [FeatureOracle.Event] = []
        /// Every example the input implies (the clocks' left out), serving
        /// features aside (every shown item is unique here; the late-events
        /// test below checks them).
        var examples: [Shape] = []
        /// (user, item) entries the impressions put into the join.
        var impressedItems = 0
        var ends: [String: Int64] = [:]
        /// Event time of the day's start, epoch ms.
        var base: Int64 = 0
    }

    /// Produces the backlog: per partition, events evenly over one day of
    /// event time, in time order; interactions on `c*` items, impressions of
    /// four unique `s*` items each (so no interaction joins an impression and
    /// every example is determined by the input alone); then a clock event two
    /// hours past the day on every source partition, which closes every window.
    static func produceBacklog(_ cluster: LocalCluster) throws -> Backlog {
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "interactions", partitions: partitions),
                                NewTopic(name: "impressions", partitions: partitions)])
        // Small record batches, as a live stream's: a fetch returns whole
        // batches, so they bound how finely the consumer can interleave partitions.
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers,
                                                             properties: ["batch.num.messages": "20"]))
        let decoder = EventDecoder()
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let base = (now - 30 * hour) / hour * hour
        let day = 24 * hour
        let actions: [Action] = [.click, .watch, .like, .skip, .share]
        var backlog = Backlog()
        backlog.base = base
        var random = SplitMix64(seed: 11)

        func send(_ topic: String, _ partition: Int32, key: String, json: String) throws {
            try producer.produce(topic: topic, partition: partition, key: Array(key.utf8), value: Array(json.utf8))
            let bytes = Array(json.utf8)
            let body: FeatureOracle.Event.Body = topic == "interactions"
                ? .interaction(try decoder.decodeInteraction(bytes, messageTimestampMs: nil, nowMs: now))
                : .impression(try decoder.decodeImpression(bytes, messageTimestampMs: nil, nowMs: now))
            backlog.events.append(FeatureOracle.Event(topic: topic, partition: partition, body: body))
            backlog.ends["\(topic)-\(partition)", default: 0] += 1
        }

        for p in 0..<partitions {
            // Users belong to one interactions partition (the input is keyed by user).
            let count = p == 0 ? 6_000 : 2_000
            for i in 0..<count {
                let ts = base + day * Int64(i) / Int64(count)
                let user = "u\(p)-\(random.next() % 40)"
                let item = "c\(random.next() % 300)"
                let action = actions[Int(random.next() % UInt64(actions.count))]
                try send("interactions", p, key: user,
                         json: "{\"user_id\":\"\(user)\",\"item_id\":\"\(item)\",\"action\":\"\(action.name)\",\"ts\":\(ts)}")
                backlog.examples.append(Shape(user: user, item: item, label: action.isPositive ? 1 : 0, action: action.name,
                                              position: nil, request: nil, impressionTs: nil, eventTs: ts, late: false))
            }
        }
        for p in 0..<partitions {
            for j in 0..<2_000 {
                let ts = base + day * Int64(j) / 2_000
                let user = "v\(random.next() % 100)"
                let request = "r\(p)-\(j)"
                let items = (0..<2).map { "s\(p)-\(j)-\($0)" }
                let shown = items.map { "\"\($0)\"" }.joined(separator: ",")
                try send("impressions", p, key: user,
                         json: "{\"request_id\":\"\(request)\",\"user_id\":\"\(user)\",\"items_shown\":[\(shown)],\"positions\":[0,1],\"ts\":\(ts)}")
                for (position, item) in items.enumerated() {
                    backlog.examples.append(Shape(user: user, item: item, label: 0, action: nil, position: position, request: request,
                                                  impressionTs: ts, eventTs: ts + windowMs, late: false))
                }
                backlog.impressedItems += items.count
            }
        }
        let clockTs = base + day + 2 * hour
        for p in 0..<partitions {
            try send("interactions", p, key: "clock\(p)",
                     json: "{\"user_id\":\"clock\(p)\",\"item_id\":\"clock-item\",\"action\":\"click\",\"ts\":\(clockTs)}")
            try send("impressions", p, key: "clock\(p)",
                     json: "{\"user_id\":\"clock\(p)\",\"items_shown\":[\"clock-item-\(p)\"],\"ts\":\(clockTs)}")
        }
        try producer.flush(timeoutMs: 60_000)
        guard producer.deliveryFailures == 0 else { throw TestFailure("\(producer.deliveryFailures) events not delivered") }
        return backlog
    }

    /// Small fetches and a short prefetch queue (about 25 records a partition
    /// each), so the consumer hands out every partition in small interleaved
    /// runs, as it does for a backlog much larger than one fetch and one poll
    /// (4,096 records); here a partition's whole backlog would fit in one.
    static func topology(_ cluster: LocalCluster, examplesTopic: String, maxDrift: String) throws -> String {
        try EndToEndTests.writeTopology(in: cluster.directory, extra: """
            event_time:
              idle_timeout: 1h
              max_drift: \(maxDrift)
            embeddings:
              dimension: 8
              join_window: 10m
              examples_topic: \(examplesTopic)
            kafka:
              max.partition.fetch.bytes: "4096"
              queued.min.messages: "20"
              queued.max.messages.kbytes: "4"
              fetch.max.bytes: "8192"
              message.max.bytes: "8192"
              fetch.queue.backoff.ms: "5"
            """)
    }

    static func examples(_ topic: String, _ cluster: LocalCluster) throws -> [Shape] {
        try EmbeddingsEndToEndTests.readExamples(topic: topic, brokers: cluster.brokers)
            .filter { !$0.userId.hasPrefix("clock") }
            .map { e in
                Shape(user: e.userId, item: e.itemId, label: e.label.rawValue, action: e.action?.name, position: e.position,
                      request: e.requestId, impressionTs: e.impressionTs, eventTs: e.eventTs, late: e.late)
            }
    }

    func assertSameExamples(_ got: [Shape], _ expected: [Shape], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, expected.count, "one example per interaction and per impressed item", file: file, line: line)
        let missing = Set(expected).subtracting(got), extra = Set(got).subtracting(expected)
        XCTAssertTrue(missing.isEmpty && extra.isEmpty,
                      "missing \(missing.count) (e.g. \(missing.prefix(3))), unexpected \(extra.count) (e.g. \(extra.prefix(3)))",
                      file: file, line: line)
    }

    /// A live run (so the peaks can be read after the whole backlog): the
    /// join state stays within a third of the impressed items (unaligned it
    /// reaches about two thirds), partitions were paused (the pause counter on
    /// /metrics; `paused` on /tasks is published once a second and pauses here
    /// are shorter), and every example is exact. Then a bounded run of the same input, aligned:
    /// it ends (pausing does not hide a partition's end) with the same
    /// features and examples.
    func testAlignedReplayKeepsTheJoinStateBoundedAndEveryResultExact() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let backlog = try Self.produceBacklog(cluster)
        let oracle = FeatureOracle(events: backlog.events)
        let redis = try RedisConnection(url: cluster.redisURL)

        let adminPort = try LocalCluster.freePort()
        let started = Date()
        let live = try FreshetBinary.start(["run", "--topology", try Self.topology(cluster, examplesTopic: "ex-live", maxDrift: "10m"),
                                            "--brokers", cluster.brokers, "--redis", cluster.redisURL, "--group", "aligned",
                                            "--admin-port=\(adminPort)"], logPath: "\(cluster.directory)/aligned.log")
        defer { live.signal(SIGKILL) }
        var mostPaused = 0
        var trajectory: [String] = []
        var snapshot: AdminTasks.Snapshot?
        let caughtUp = try FaultInjection.waitUntil(timeout: 240, every: 0.2) {
            guard live.isRunning else { throw TestFailure("freshet exited: " + live.logTail()) }
            guard let current = try? AdminTasks.fetch(port: adminPort, timeout: 2) else { return false }
            snapshot = current
            mostPaused = max(mostPaused, current.tasks.filter(\.paused).count)
            trajectory.append(current.tasks.map { t in
                "\(t.task):\(t.watermarkMs.map { String(($0 - backlog.base) / 60_000) } ?? "-")m\(t.paused ? "P" : "")\(t.joinerEntries.map { "j\($0)" } ?? "")"
            }.joined(separator: " "))
            let sources = current.tasks.filter { $0.stage == "interactions" || $0.stage == "impressions" }
            guard sources.count == 2 * Int(Self.partitions),
                  sources.allSatisfy({ $0.position == backlog.ends[$0.task] }) else { return false }
            // Every window closed: the counts tasks' joins hold only tombstones, and every example went out.
            return try Self.examples("ex-live", cluster).count >= backlog.examples.count
        }
        XCTAssertTrue(caughtUp, "the live run read the backlog and wrote every example: \(snapshot.map(String.init(describing:)) ?? "no /tasks"); " + live.logTail())
        // A publication after everything was processed (`/tasks` is published about once a second).
        let doneMs = Int64(Date().timeIntervalSince1970 * 1000)
        snapshot = try AdminTasks.waitUntil(port: adminPort, timeout: 30, "a publication after the backlog") { $0.publishedMs > doneMs + 100 }
        // The join is the counts stage's (one counts task per item partition).
        let joining = snapshot?.tasks.filter { $0.stage == "counts" } ?? []
        XCTAssertEqual(joining.count, Int(Self.partitions))
        let peak = joining.compactMap(\.joinerPeakEntries).reduce(0, +)
        print("alignment: live run caught up after \(Int(Date().timeIntervalSince(started))) s; join peak \(peak) of \(backlog.impressedItems); most paused \(mostPaused)")
        XCTAssertGreaterThan(peak, 0, "the join held impressions")
        XCTAssertLessThan(peak, backlog.impressedItems / 3,
                          "join state bounded by alignment (\(peak) of \(backlog.impressedItems) impressed items at the peak):\n\(trajectory.joined(separator: "\n"))")
        let metrics = try HTTPGet.get(port: adminPort, path: "/metrics").body
        let pauses = PrometheusText(metrics).sum("freshet_alignment_pauses_total")
        XCTAssertGreaterThan(pauses, 0, "pauses are counted")
        live.signal(SIGTERM)
        XCTAssertEqual(try live.wait(timeout: 60), 0, live.logTail())
        // (The features are compared after the bounded run: a live run writes
        // `trending:meta` only with changed items, so its final watermark may
        // not be there.)
        assertSameExamples(try Self.examples("ex-live", cluster), backlog.examples)

        // The bounded run, into an empty Redis.
        _ = try redis.command(["FLUSHALL"])
        let bounded = try FreshetBinary.start(["run", "--topology", try Self.topology(cluster, examplesTopic: "ex-bounded", maxDrift: "10m"),
                                               "--brokers", cluster.brokers, "--redis", cluster.redisURL, "--group", "bounded",
                                               "--stop-at-end", "--admin-port=-1"], logPath: "\(cluster.directory)/bounded.log")
        defer { bounded.signal(SIGKILL) }
        let boundedStart = Date()
        XCTAssertEqual(try bounded.wait(timeout: 240), 0, bounded.logTail())
        print("alignment: bounded run took \(Int(Date().timeIntervalSince(boundedStart))) s")
        try EndToEndTests.assertRedisMatches(oracle, redis: redis)
        assertSameExamples(try Self.examples("ex-bounded", cluster), backlog.examples)
    }
    /// The breaker's input: a near-ordered stream with a very heavy user and
    /// events up to a minute out of order (far past the 5 s bound: most are
    /// late), clicks joining their impressions. Aligned and unaligned bounded
    /// runs must write the same examples, and each impression's
    /// `interaction_count` must be the user's positives known by its time
    /// (a late positive is known from just past its partition's watermark
    /// when read), and its `popularity_7d` and `impressions_7d` the item's
    /// events known by then. Before known-from times, the default drift gave
    /// counts below the user's positives and fewer joined clicks, differing
    /// between identical runs; before the item features waited for the
    /// watermark, they were the counts when the item task applied the
    /// impression, off by much in a replay.
    func testLateEventsGiveTheSameExamplesAlignedOrNot() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "interactions", partitions: Self.partitions),
                                NewTopic(name: "impressions", partitions: Self.partitions)])
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers,
                                                             properties: ["batch.num.messages": "20"]))
        var random = SplitMix64(seed: 5)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var t = (now - 30 * Self.hour) / Self.hour * Self.hour
        var events: [(arrival: Int64, topic: String, user: String, ts: Int64, json: String, positive: Bool, items: [String])] = []
        for n in 0..<2_500 {
            t += Int64(random.next() % 1_000)
            let user = random.next() % 2 == 0 ? "whale" : "u\(random.next() % 60)"
            let shown = (0..<3).map { _ in "i\(random.next() % 400)" }
            let items = shown.map { "\"\($0)\"" }.joined(separator: ",")
            let jitter = { Int64(random.next() % 120_001) - 60_000 }
            events.append((t + jitter(), "impressions", user, t,
                           #"{"request_id":"r\#(n)","user_id":"\#(user)","items_shown":[\#(items)],"positions":[0,1,2],"ts":\#(t)}"#, false,
                           shown))
            for item in shown where random.next() % 3 == 0 {
                let ts = t + 1_000 + Int64(random.next() % 700_000)
                let action = ["click", "watch", "like", "skip"][Int(random.next() % 4)]
                events.append((ts + jitter(), "interactions", user, ts,
                               #"{"user_id":"\#(user)","item_id":"\#(item)","action":"\#(action)","ts":\#(ts)}"#, action != "skip",
                               [item]))
            }
        }
        events.sort { $0.arrival < $1.arrival }
        let end = t + 3 * Self.hour
        for p in 0..<Self.partitions {
            events.append((end, "interactions", "clock\(p)", end, #"{"user_id":"clock\#(p)","item_id":"c","action":"skip","ts":\#(end)}"#, false, ["c"]))
            events.append((end, "impressions", "clock\(p)", end, #"{"user_id":"clock\#(p)","items_shown":["c"],"ts":\#(end)}"#, false, ["c"]))
        }
        // Each partition's log in produce order gives every event its known-from time.
        var watermarks: [String: BoundedOutOfOrdernessWatermark] = [:]
        var knownPositives: [String: [Int64]] = [:]
        // Per item, its counted events (impressions' shown items, positives) with their known-from times.
        var itemEvents: [String: [(ts: Int64, knownFrom: Int64, positive: Bool)]] = [:]
        var impressionsByRequest: [String: (ts: Int64, knownFrom: Int64)] = [:]
        var late = 0
        for e in events {
            let p = e.user.hasPrefix("clock") ? Int32(e.user.dropFirst(5))!
                : KafkaProducer.partition(forKey: Array(e.user.utf8), partitionCount: Self.partitions)
            try producer.produce(topic: e.topic, partition: p, key: Array(e.user.utf8), value: Array(e.json.utf8))
            let log = "\(e.topic)-\(p)"
            watermarks[log, default: BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)].observe(e.ts)
            let knownAt = watermarks[log]?.knownAt(e.ts)
            if knownAt != nil { late += 1 }
            if e.positive { knownPositives[e.user, default: []].append(knownAt ?? e.ts) }
            if e.topic == "impressions" || e.positive {
                for item in e.items { itemEvents[item, default: []].append((e.ts, knownAt ?? e.ts, e.positive)) }
            }
            if e.topic == "impressions", let r = e.json.range(of: #""request_id":"r"#) {
                let request = "r" + e.json[r.upperBound...].prefix { $0 != "\"" }
                impressionsByRequest[request] = (e.ts, knownAt ?? e.ts)
            }
        }
        /// popularity_7d, impressions_7d as of an impression: the item's events
        /// known by its known-from time K, over the panes pane(K) − 167 ... pane(ts)
        /// (docs/EMBEDDINGS.md, "Item features as of the impression").
        func expectedItemFeatures(item: String, request: String) -> (Int64, Int64)? {
            guard let m = impressionsByRequest[request] else { return nil }
            let hi = m.ts / Self.hour, lo = m.knownFrom / Self.hour - 167
            var positives: Int64 = 0, shown: Int64 = 0
            for e in itemEvents[item, default: []] where e.knownFrom <= m.knownFrom && (lo...hi).contains(e.ts / Self.hour) {
                if e.positive { positives += 1 } else { shown += 1 }
            }
            return (positives, shown)
        }
        try producer.flush(timeoutMs: 60_000)
        XCTAssertGreaterThan(late, events.count / 2, "most events are late")

        func boundedRun(_ name: String, maxDrift: String) throws -> [String] {
            let run = try FreshetBinary.start(["run", "--topology", try Self.topology(cluster, examplesTopic: "ex-\(name)", maxDrift: maxDrift),
                                               "--brokers", cluster.brokers, "--redis", cluster.redisURL, "--group", name,
                                               "--stop-at-end", "--admin-port=-1"], logPath: "\(cluster.directory)/\(name).log")
            defer { run.signal(SIGKILL) }
            XCTAssertEqual(try run.wait(timeout: 240), 0, run.logTail())
            var wrong: [String] = []
            var wrongItems: [String] = []
            let examples = try EmbeddingsEndToEndTests.readExamples(topic: "ex-\(name)", brokers: cluster.brokers)
                .filter { !$0.userId.hasPrefix("clock") }
            for e in examples {
                guard let impression = e.impressionTs else { continue }
                let expected = Int64(knownPositives[e.userId, default: []].filter { $0 <= impression }.count)
                if e.features?.interactionCount != expected {
                    wrong.append("\(e.userId) \(e.requestId ?? "-"): \(e.features?.interactionCount ?? -1), expected \(expected)")
                }
                let item = e.requestId.flatMap { expectedItemFeatures(item: e.itemId, request: $0) }
                if item == nil || e.features?.popularity7d != item?.0 || e.features?.impressions7d != item?.1 {
                    wrongItems.append("\(e.itemId) \(e.requestId ?? "-"): popularity \(e.features?.popularity7d ?? -1) impressions "
                                      + "\(e.features?.impressions7d ?? -1), expected \(item.map { "\($0.0) \($0.1)" } ?? "none")")
                }
            }
            XCTAssertTrue(wrong.isEmpty, "\(name): \(wrong.count) impression examples with a wrong interaction_count, e.g. \(wrong.prefix(5))")
            XCTAssertTrue(wrongItems.isEmpty, "\(name): \(wrongItems.count) impression examples with wrong item features, e.g. \(wrongItems.prefix(5))")
            return examples.map { e in
                "\(e.userId) \(e.itemId) \(e.label) \(e.action?.name ?? "-") \(e.late) \(e.requestId ?? "-") "
                    + "\(e.impressionTs ?? -1) \(e.eventTs) \(e.position ?? -1) \(e.features?.interactionCount ?? -1) "
                    + "\(e.features?.popularity7d ?? -1) \(e.features?.impressions7d ?? -1)"
            }.sorted()
        }
        let aligned = try boundedRun("late-aligned", maxDrift: "10m")
        let unaligned = try boundedRun("late-unaligned", maxDrift: "off")
        XCTAssertGreaterThan(aligned.filter { $0.contains(" positive ") && !$0.contains(" -1 ") }.count, 500, "clicks joined their impressions")
        let missing = Set(unaligned).subtracting(aligned), extra = Set(aligned).subtracting(unaligned)
        XCTAssertTrue(aligned == unaligned, "aligned \(aligned.count) examples, unaligned \(unaligned.count); only unaligned \(missing.count) "
                      + "(e.g. \(missing.sorted().prefix(3))), only aligned \(extra.count) (e.g. \(extra.sorted().prefix(3)))")
    }
}
