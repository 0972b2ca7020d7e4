import Foundation
import FreshetEmbeddings
import FreshetKafka
import FreshetRedis
import FreshetTestSupport
import FreshetWorkload
import XCTest

/// The co-occurrence embeddings through the real processor: what Redis serves
/// is exactly the model's own result over the checkpointed rows, user vectors
/// are the mean of their recent items' vectors, and three instances in one
/// group publish the same vectors as one instance.
final class EmbeddingsEndToEndTests: XCTestCase {
    static let dimension = 16
    static let partitions = 4
    /// 120 items: a row holds at most 119 entries, below the 200-entry pruning
    /// bound, so rows (and vectors) do not depend on the order of arrival.
    static func plantedConfig() -> PlantedConfig {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return PlantedConfig(users: 300, items: 120, clusters: 4, events: 8_000, impressions: true, seed: 9,
                             startTs: now - 3 * 3_600_000, meanGapMs: 1_000)
    }

    static func produce(_ cluster: LocalCluster, _ config: PlantedConfig) throws -> Int {
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: cluster.brokers))
        try admin.createTopics([NewTopic(name: "interactions", partitions: Int32(partitions)),
                                NewTopic(name: "impressions", partitions: Int32(partitions))])
        let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers))
        var produced = 0
        for event in PlantedStream(config) {
            try producer.produce(topic: event.topic, key: Array(event.key.utf8), value: event.json)
            produced += 1
        }
        try producer.flush(timeoutMs: 30_000)
        return produced
    }

    /// Refreshes every 500 positives, syncs every 200 ms, no examples topic,
    /// and the given `publish_interval`: the tests of when refreshes are published.
    static func fastSyncTopology(_ cluster: LocalCluster, publishInterval: String) throws -> String {
        try EndToEndTests.writeTopology(in: cluster.directory, extra: """
            embeddings:
              dimension: \(dimension)
              refresh_every: 500
              sync_interval: 200ms
              publish_interval: \(publishInterval)
              examples: false
            """)
    }

    static func topology(_ cluster: LocalCluster, prefix: String, examples: Bool = true) throws -> String {
        try EndToEndTests.writeTopology(in: cluster.directory, extra: """
            redis:
              key_prefix: "\(prefix)"
            embeddings:
              dimension: \(dimension)
              refresh_every: 1500
              examples: \(examples)
            """)
    }

    static func run(_ cluster: LocalCluster, topology: String, group: String, instances: Int) throws {
        let runs = try (0..<instances).map { try startBoundedRun(cluster, topology: topology, group: group, name: "\($0)").process }
        for run in runs { XCTAssertEqual(try run.wait(timeout: 240), 0, run.logTail()) }
    }

    /// item id -> published vector, for every item with an embedding field.
    static func publishedItems(_ redis: RedisConnection, prefix: String, items: Int) throws -> [ByteId: [Float]] {
        var result: [ByteId: [Float]] = [:]
        for i in 0..<items {
            if let blob = try redis.command(["HGET", "\(prefix)item:i\(i)", "embedding_\(dimension)d"]).bytes {
                result[ByteId("i\(i)")] = floats(blob)
            }
        }
        return result
    }

    static func floats(_ blob: [UInt8]) -> [Float] {
        stride(from: 0, to: blob.count, by: 4).map { k in
            Float(bitPattern: UInt32(blob[k]) | UInt32(blob[k + 1]) << 8 | UInt32(blob[k + 2]) << 16 | UInt32(blob[k + 3]) << 24)
        }
    }

    func testPublishedVectorsAreTheModelsOwnAndUsersAreMeansOfTheirItems() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let config = Self.plantedConfig()
        let produced = try Self.produce(cluster, config)
        try Self.run(cluster, topology: try Self.topology(cluster, prefix: ""), group: "emb", instances: 1)

        // The model's own result: the final refresh over the checkpointed rows.
        let redis = try RedisConnection(url: cluster.redisURL)
        var builder = CooccurrenceSnapshot.Builder()
        for p in 0..<Self.partitions {
            for (id, bytes) in try redis.hgetall("freshet:emb:ckpt:items-\(p):emb") {
                let row = try CooccurrenceSnapshot.decodeRow(bytes)
                builder.addRow(item: ByteId(id), degree: row.degree, entries: row.entries)
            }
        }
        // The processor runs OpenBLAS on one thread; so must the reference (summation order).
        SpectralRefresh.useOneBLASThread()
        let model = SpectralRefresh.refresh(SymmetricSparseMatrix(builder.snapshot), dimension: Self.dimension,
                                            previous: nil, iterations: 12, seed: 42)
        XCTAssertGreaterThan(model.count, 100, "items have rows")
        let published = try Self.publishedItems(redis, prefix: "", items: config.items)
        XCTAssertEqual(published.count, model.count, "every item with a row has a vector, and only those")
        for (id, vector) in published {
            XCTAssertEqual(vector, model.vector(id), "item:\(id.string) serves the model's vector")
        }
        let version = try redis.command(["HGET", "item:i0", "embedding_version"]).string
        XCTAssertNotNil(version, "items carry the refresh version")

        // Users: the mean of the vectors of the first 10 of their recent_items_50
        // (what a reader computes from Redis alone), same version.
        var users = 0
        for u in 0..<config.users {
            let key = "user:\(PlantedPreferences.userId(u))"
            guard let json = try redis.command(["HGET", key, "recent_items_50"]).string,
                  let recent = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String],
                  let expected = model.meanVector(recent.prefix(10).map(ByteId.init)) else { continue }
            guard let blob = try redis.command(["HGET", key, "embedding_\(Self.dimension)d"]).bytes else {
                XCTFail("\(key) has no vector"); continue
            }
            XCTAssertEqual(Self.floats(blob), expected, "\(key) = mean of the first 10 recent items' vectors")
            XCTAssertEqual(try redis.command(["HGET", key, "embedding_version"]).string, version)
            users += 1
        }
        XCTAssertGreaterThan(users, 250, "user vectors were published")
        let examples = try Self.readExamples(topic: "freshet-examples", brokers: cluster.brokers)
        XCTAssertGreaterThan(examples.count, produced / 2, "examples reach freshet-examples")
    }

    /// A bounded run that ends within `publish_interval` publishes one
    /// refresh, its final one: a mid-run switch would rewrite every user and
    /// item only for the end to rewrite them again (with syncs every 200 ms
    /// the first refresh, after 2,000 positives, used to be switched to
    /// mid-run). Users still end with their vectors.
    func testABoundedRunEndingWithinThePublishIntervalPublishesOnlyItsFinalRefresh() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let config = Self.plantedConfig()
        _ = try Self.produce(cluster, config)
        let topology = try Self.fastSyncTopology(cluster, publishInterval: "10m")
        let run = try Self.startBoundedRun(cluster, topology: topology, group: "short", name: "0")
        XCTAssertEqual(try run.process.wait(timeout: 240), 0, run.process.logTail())
        let log = try String(contentsOfFile: run.log, encoding: .utf8)
        let publications = log.split(separator: "\n").filter { $0.contains("publishing a new embedding refresh") }
        XCTAssertEqual(publications.count, 1, publications.joined(separator: "\n"))
        XCTAssertTrue(publications.first?.contains("version=1") == true, "no refresh before the final one: \(publications)")
        let redis = try RedisConnection(url: cluster.redisURL)
        XCTAssertGreaterThan(try EndToEndTests.countKeys(redis, pattern: "user:*", withField: "embedding_\(Self.dimension)d"), 250,
                             "users got their vectors with the final refresh")
    }

    /// Every example in a topic (compact bundles, `ExampleCodec`), read to the end with a fresh group.
    static func readExamples(topic: String, brokers: String) throws -> [TrainingExample] {
        let consumer = try KafkaConsumer(config: KafkaConfig(bootstrapServers: brokers), groupId: "examples-\(UUID().uuidString)",
                                         topics: [topic])
        defer { try? consumer.close() }
        var examples: [TrainingExample] = []
        var ended: Set<Int32> = []
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let poll = try consumer.poll(maxRecords: 1000, timeoutMs: 200)
            for record in poll.records { examples += try ExampleCodec.decodeBundle(record.value) }
            for end in poll.endOfPartition { ended.insert(end.topicPartition.partition) }
            let assigned = consumer.assignment()
            if !assigned.isEmpty && assigned.allSatisfy({ ended.contains($0.partition) }) && poll.records.isEmpty { return examples }
        }
        throw TestFailure("could not read \(topic) to its end")
    }

    /// Three instances in one group publish the same item vectors as one
    /// instance on the same input (tolerance 1e-5 per coordinate: the same
    /// rows give the same matrix; only float rounding could differ).
    /// Two instances in one bounded run, one killed (kill -9) as it logs
    /// that its run is complete, before its final checkpoint and marker:
    /// the survivor, waiting in its loop for the group's final markers,
    /// takes the killed one's partitions over through the group, finishes
    /// and marks them, and publishes the same vectors as a one-instance run.
    /// Before, it waited inside its stop, took nothing over, and exited 0
    /// with the killed one's items and their users without vectors (a
    /// breaker's finding).
    func testASurvivorTakesOverAnInstanceKilledAtTheEndOfABoundedRun() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let config = Self.plantedConfig()
        _ = try Self.produce(cluster, config)
        try Self.run(cluster, topology: try Self.topology(cluster, prefix: "one:"), group: "one", instances: 1)
        let topology = try EndToEndTests.writeTopology(in: cluster.directory, extra: """
            redis:
              key_prefix: "killed:"
            embeddings:
              dimension: \(Self.dimension)
              refresh_every: 1500
              final_wait: 90s
            """)
        let (victim, survivor) = try Self.killFirstToComplete(cluster, topology: topology, group: "killed")
        let victimItems = Set(FaultInjection.assignments(victim.log).map(\.task).filter { $0.hasPrefix("items-") })
        guard !victimItems.isEmpty else {
            _ = survivor.process.stop()
            throw XCTSkip("the killed instance held no item partition")
        }
        XCTAssertEqual(try survivor.process.wait(timeout: 180), 0, survivor.process.logTail())
        let survivorItems = Set(FaultInjection.assignments(survivor.log).map(\.task).filter { $0.hasPrefix("items-") })
        XCTAssertTrue(victimItems.isSubset(of: survivorItems), "the survivor took over \(victimItems), it held \(survivorItems)")

        let redis = try RedisConnection(url: cluster.redisURL)
        try Self.assertSameItemVectors(redis, "one:", "killed:", items: config.items)
        let field = "embedding_\(Self.dimension)d"
        XCTAssertEqual(try EndToEndTests.countKeys(redis, pattern: "killed:user:*", withField: field),
                       try EndToEndTests.countKeys(redis, pattern: "one:user:*", withField: field), "every user has a vector")
    }

    /// Produces the planted stream and writes a topology whose bounded runs
    /// wait `finalWait` for the group's final markers and reports.
    static func produceForEndOfRun(_ cluster: LocalCluster, finalWait: String) throws -> String {
        _ = try produce(cluster, plantedConfig())
        return try EndToEndTests.writeTopology(in: cluster.directory, extra: """
            embeddings:
              dimension: \(dimension)
              final_wait: \(finalWait)
            """)
    }

    /// Starts one instance of a bounded run of `group`, logging to `<group>-<name>.log`.
    static func startBoundedRun(_ cluster: LocalCluster, topology: String, group: String, name: String) throws
        -> (process: ChildProcess, log: String) {
        let log = "\(cluster.directory)/\(group)-\(name).log"
        return (try FreshetBinary.start(["run", "--topology", topology, "--brokers", cluster.brokers, "--redis", cluster.redisURL,
                                         "--group", group, "--stop-at-end", "--admin-port=-1"], logPath: log), log)
    }

    /// Starts two instances of a bounded run together (so that the group's
    /// first assignment splits the partitions) and kills (kill -9) the first
    /// to log that its run is complete, before its final checkpoint and markers.
    static func killFirstToComplete(_ cluster: LocalCluster, topology: String, group: String) throws
        -> (victim: (process: ChildProcess, log: String), survivor: (process: ChildProcess, log: String)) {
        let runs = try ["a", "b"].map { try startBoundedRun(cluster, topology: topology, group: group, name: $0) }
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            for (k, run) in runs.enumerated()
            where (try? String(contentsOfFile: run.log, encoding: .utf8))?.contains("bounded run complete") == true {
                run.process.signal(SIGKILL)
                _ = try run.process.wait(timeout: 10)
                return (run, runs[1 - k])
            }
            usleep(2_000)
        }
        for run in runs { _ = run.process.stop() }
        throw TestFailure("no instance completed its run")
    }

    /// Two instances, one killed (kill -9) as soon as its item partitions
    /// are marked final, before it writes its final vectors: the survivor
    /// finds no report of them within `final_wait` and fails, naming the
    /// killed one's tasks. Before, it exited 0 with half the items and users
    /// without final vectors (a breaker's finding).
    func testASurvivorFailsWhenAMarkedInstanceNeverWritesItsFinalVectors() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let topology = try Self.produceForEndOfRun(cluster, finalWait: "3s")
        let group = "unwritten"
        let runs = try ["a", "b"].map { try Self.startBoundedRun(cluster, topology: topology, group: group, name: $0) }
        let redis = try RedisConnection(url: cluster.redisURL)
        // The first instance to mark its item partitions final is killed at once.
        var victim: Int?
        let deadline = Date().addingTimeInterval(120)
        while victim == nil && Date() < deadline {
            if case .array(let fields)? = try? redis.command(["HKEYS", "freshet:\(group):emb:final"]), !fields.isEmpty {
                let marked = Set(fields.compactMap { reply -> String? in
                    guard case .bulk(let bytes) = reply else { return nil }
                    return "items-" + String(decoding: bytes, as: UTF8.self)
                })
                victim = runs.firstIndex { run in
                    !marked.isDisjoint(with: FaultInjection.assignments(run.log).map(\.task))
                }
                if let v = victim { runs[v].process.signal(SIGKILL) }
            }
            usleep(500)
        }
        let v = try XCTUnwrap(victim, "no instance marked its partitions final")
        _ = try runs[v].process.wait(timeout: 10)
        let survivor = runs[1 - v].process
        XCTAssertEqual(try survivor.wait(timeout: 120), 1, survivor.logTail())
        XCTAssertTrue(survivor.logTail(lines: 20).contains("were not written (their owner stopped after the final refresh began)"),
                      survivor.logTail())
    }

    /// As `testASurvivorTakesOverAnInstanceKilledAtTheEndOfABoundedRun`, with
    /// a wait for the group's final markers shorter than the
    /// broker's session timeout: the survivor stops waiting before the
    /// group hands it the killed one's partitions, and fails, naming the
    /// partitions its final refresh lacked and the remedy.
    func testASurvivorThatCannotWaitForAKilledInstanceFailsLoudly() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let topology = try Self.produceForEndOfRun(cluster, finalWait: "1s")
        let (victim, survivor) = try Self.killFirstToComplete(cluster, topology: topology, group: "short-wait")
        guard FaultInjection.assignments(victim.log).contains(where: { $0.task.hasPrefix("items-") }) else {
            _ = survivor.process.stop()
            throw XCTSkip("the killed instance held no item partition")
        }
        XCTAssertEqual(try survivor.process.wait(timeout: 120), 1, survivor.process.logTail())
        XCTAssertTrue(survivor.process.logTail(lines: 20).contains("lacked the final rows of item partitions"),
                      survivor.process.logTail())
    }

    func testThreeInstancesPublishTheSameVectorsAsOne() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let config = Self.plantedConfig()
        _ = try Self.produce(cluster, config)
        try Self.run(cluster, topology: try Self.topology(cluster, prefix: "one:"), group: "one", instances: 1)
        // Examples off here: the item stage then reads positives in place
        // (ItemEventView) instead of decoding whole events, and must count the same.
        try Self.run(cluster, topology: try Self.topology(cluster, prefix: "three:", examples: false), group: "three", instances: 3)
        let itemOwners = (0..<3).filter { n in
            FaultInjection.assignments("\(cluster.directory)/three-\(n).log").contains { $0.task.hasPrefix("items-") }
        }
        XCTAssertGreaterThan(itemOwners.count, 1, "item partitions were spread over the instances")
        let redis = try RedisConnection(url: cluster.redisURL)
        try Self.assertSameItemVectors(redis, "one:", "three:", items: config.items)
    }

    /// The items published under two key prefixes (two runs of one input)
    /// are the same, with the same vectors to 1e-5 in every coordinate.
    static func assertSameItemVectors(_ redis: RedisConnection, _ first: String, _ second: String, items: Int,
                                      file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try publishedItems(redis, prefix: first, items: items)
        let b = try publishedItems(redis, prefix: second, items: items)
        XCTAssertGreaterThan(a.count, 100, file: file, line: line)
        XCTAssertEqual(Set(a.keys), Set(b.keys), "the same items have vectors", file: file, line: line)
        var worst: Float = 0
        for (id, x) in a {
            guard let y = b[id], y.count == x.count else { XCTFail("\(id.string) missing", file: file, line: line); continue }
            for k in 0..<x.count { worst = max(worst, abs(x[k] - y[k])) }
        }
        print("\(second) vs \(first): largest coordinate difference \(worst) over \(a.count) items")
        XCTAssertLessThanOrEqual(worst, 1e-5, "largest coordinate difference between the runs", file: file, line: line)
    }

}

/// Mid-run refreshes with several instances: one result for the group.
final class SharedRefreshEndToEndTests: XCTestCase {
    /// Two instances, unbounded: only the owner of items-0 refreshes; the
    /// other loads its published set, so every item in Redis, whichever
    /// instance owns it, carries the same `embedding_version` and exactly the
    /// published set's vector. (Before: each instance refreshed on its own,
    /// from its own rows plus the others' last checkpoints.)
    func testTwoInstancesPublishTheLeadersRefreshMidRun() throws {
        let cluster = try LocalCluster()
        defer { cluster.stop() }
        let config = EmbeddingsEndToEndTests.plantedConfig()
        let topology = try EmbeddingsEndToEndTests.fastSyncTopology(cluster, publishInterval: "0s")
        let ports = try (0..<2).map { _ in try LocalCluster.freePort() }
        let runs = try (0..<2).map { n in
            try ScalingTests.startInstance(cluster, topology: topology, group: "shared", name: "shared-\(n)", adminPort: ports[n])
        }
        defer { for run in runs { run.signal(SIGKILL) } }
        // Both members own item partitions before any event exists, so the
        // leadership does not move once refreshes begin.
        try AdminTasks.waitUntil(ports: ports, timeout: 90, "both instances own item partitions") { snapshots in
            snapshots.allSatisfy { $0.tasks.contains { $0.stage == "items" } }
        }
        let redis = try RedisConnection(url: cluster.redisURL)
        // Two rounds of input: after each, the whole group converges on the
        // leader's newest refresh (the second round moves the version on).
        var versions: [Int64] = []
        for round in 0..<2 {
            if round == 0 {
                _ = try EmbeddingsEndToEndTests.produce(cluster, config)
            } else {
                let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: cluster.brokers))
                for event in PlantedStream(config) {
                    try producer.produce(topic: event.topic, key: Array(event.key.utf8), value: event.json)
                }
                try producer.flush(timeoutMs: 30_000)
            }
            versions.append(try Self.waitForAgreement(redis, items: config.items, above: versions.last ?? 0))
        }
        XCTAssertGreaterThan(versions[1], versions[0])
        for run in runs { run.signal(SIGTERM) }
        for run in runs { XCTAssertEqual(try run.wait(timeout: 60), 0, run.logTail()) }

        let summaries = try (0..<2).map { n in
            try String(contentsOfFile: "\(cluster.directory)/shared-\(n).log", encoding: .utf8)
                .split(separator: "\n").last { $0.contains("embeddings: refreshes") }.map(String.init) ?? ""
        }
        XCTAssertEqual(summaries.filter { $0.contains("refresh leader: true") }.count, 1, summaries.joined(separator: "\n"))
        XCTAssertEqual(summaries.filter { $0.contains("refreshes 0 (refresh leader: false)") }.count, 1,
                       "the follower ran no refresh of its own: \(summaries.joined(separator: "\n"))")
    }

    /// Waits until the leader published a set above `above` and every item
    /// with a vector in Redis shows that set's version and (for items of the
    /// set) exactly its vector; returns the version.
    static func waitForAgreement(_ redis: RedisConnection, items: Int, above: Int64) throws -> Int64 {
        var lastProblem = "nothing published yet"
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.5)
            guard let set = try publishedSet(redis, group: "shared") else { continue }
            guard set.version > above else { lastProblem = "the leader's set is still version \(set.version)"; continue }
            let published = try EmbeddingsEndToEndTests.publishedItems(redis, prefix: "", items: items)
            var problems: [String] = []
            for (id, vector) in published {
                let version = try redis.command(["HGET", "item:\(id.string)", "embedding_version"]).string
                if version != String(set.version) {
                    problems.append("\(id.string) at version \(version ?? "none"), the leader's is \(set.version)")
                } else if let expected = set.vector(id), expected != vector {
                    problems.append("\(id.string): vector differs from the published set")
                }
            }
            if published.count < 100 { problems.append("only \(published.count) items have vectors") }
            if problems.isEmpty { return set.version }
            lastProblem = problems.prefix(3).joined(separator: "; ")
        }
        XCTFail("the group did not converge on the leader's refresh: \(lastProblem)")
        return above
    }

    /// The set the refresh leader published (README: "embset" keys of items-0).
    static func publishedSet(_ redis: RedisConnection, group: String) throws -> ItemVectorSet? {
        let pointer = "freshet:\(group):embset:items-0"
        guard let data = try redis.command(["HGET", pointer, "data"]).string,
              let header = try redis.command(["HGET", data, "header"]).bytes else { return nil }
        let chunks = try (0..<ItemVectorSet.chunkCount(header: header)).map { n in
            try redis.command(["HGET", data, String(n)]).bytes ?? []
        }
        return try ItemVectorSet.decode(header: header, chunks: chunks)
    }
}
