import FreshetRuntime
import XCTest

final class TopologyLoaderTests: XCTestCase {
    func testEmptyFileGivesTheDefaults() throws {
        XCTAssertEqual(try TopologyLoader.parse(yaml: ""), Topology())
    }

    func testShippedTopologyIsValidAndMatchesTheDocumentedDefaults() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let topology = try TopologyLoader.load(path: root.appendingPathComponent("topologies/recsys.yaml").path)
        XCTAssertEqual(topology, Topology())
    }

    /// Topologies that would lose state or never write examples are refused
    /// at start-up with the key to change: a user's run with checkpoints off
    /// lost 10-65% of the examples at a rebalance (and every task's keyed
    /// state starts empty after one), and one with examples on and
    /// embeddings off wrote no example, both without a word.
    func testCheckpointsOffAndExamplesWithoutEmbeddingsAreRefused() {
        XCTAssertThrowsError(try TopologyLoader.parse(yaml: "embeddings:\n  enabled: false\n  examples: true\n")) { error in
            XCTAssertEqual((error as? TopologyError)?.path, "embeddings.examples")
        }
        for yaml in ["checkpoint:\n  interval: 0\n", "checkpoint:\n  interval: 0\nembeddings:\n  enabled: false\n"] {
            XCTAssertThrowsError(try TopologyLoader.parse(yaml: yaml)) { error in
                XCTAssertEqual((error as? TopologyError)?.path, "checkpoint.interval")
            }
        }
        XCTAssertNoThrow(try TopologyLoader.parse(yaml: "embeddings:\n  enabled: false\n  examples: false\n"))
        XCTAssertNoThrow(try TopologyLoader.parse(yaml: "checkpoint:\n  interval: 250ms\n"))
    }

    func testValuesAreRead() throws {
        let topology = try TopologyLoader.parse(yaml: """
        sources:
          interactions: clicks
          keyed_by_user: false
        event_time:
          out_of_orderness: 250ms
          idle_timeout: 2m
        windows:
          pane: 30m
          length: 1d
        trending:
          half_life: 2h
          top_k: 50
        redis:
          key_prefix: "rec:"
        checkpoint:
          interval: 2s
        kafka:
          security.protocol: SASL_SSL
        """)
        XCTAssertEqual(topology.sources.interactions, "clicks")
        XCTAssertFalse(topology.sources.keyedByUser)
        XCTAssertEqual(topology.eventTime.outOfOrdernessMs, 250)
        XCTAssertEqual(topology.eventTime.idleTimeoutMs, 120_000)
        XCTAssertEqual(topology.windows.panesPerWindow, 48)
        XCTAssertEqual(topology.trending.halfLifeMs, 7_200_000)
        XCTAssertEqual(topology.trending.topK, 50)
        XCTAssertEqual(topology.redis.keyPrefix, "rec:")
        XCTAssertEqual(topology.checkpointIntervalMs, 2_000)
        XCTAssertEqual(topology.kafka["security.protocol"], "SASL_SSL")
    }

    /// `event_time.max_drift`: a duration, `off`, or (absent) the join window
    /// when the examples topic is on and off otherwise.
    func testMaxDriftOfWatermarkAlignment() throws {
        XCTAssertEqual(Topology().alignmentMaxDriftMs, 600_000, "default topology: the join window")
        XCTAssertEqual(try TopologyLoader.parse(yaml: "embeddings:\n  join_window: 20m\n").alignmentMaxDriftMs, 1_200_000)
        XCTAssertNil(try TopologyLoader.parse(yaml: "embeddings:\n  examples: false\n").alignmentMaxDriftMs,
                     "without the examples' join nothing waits on the watermark: off")
        XCTAssertNil(try TopologyLoader.parse(yaml: "embeddings:\n  enabled: false\n").alignmentMaxDriftMs)
        let set = try TopologyLoader.parse(yaml: "event_time:\n  max_drift: 30m\nembeddings:\n  examples: false\n")
        XCTAssertEqual(set.eventTime.maxDriftMs, 1_800_000)
        XCTAssertEqual(set.alignmentMaxDriftMs, 1_800_000, "an explicit drift applies whatever the embeddings")
        XCTAssertNil(try TopologyLoader.parse(yaml: "event_time:\n  max_drift: off\n").alignmentMaxDriftMs)
        XCTAssertNil(try TopologyLoader.parse(yaml: "event_time:\n  max_drift: 0\n").alignmentMaxDriftMs)
        XCTAssertThrowsError(try TopologyLoader.parse(yaml: "event_time:\n  max_drift: soon\n"))
    }

    func testUnknownKeysAreRefusedWithTheirPath() {
        XCTAssertThrowsError(try TopologyLoader.parse(yaml: "windows:\n  pain: 1h\n")) { error in
            XCTAssertTrue("\(error)".contains("windows.pain"), "\(error)")
            XCTAssertTrue("\(error)".contains("unknown key"), "\(error)")
        }
        XCTAssertThrowsError(try TopologyLoader.parse(yaml: "sinks: {}\n")) { error in
            XCTAssertTrue("\(error)".contains("sinks"), "\(error)")
        }
    }

    func testBadValuesAreRefused() {
        let cases = [
            ("event_time:\n  out_of_orderness: five seconds\n", "event_time.out_of_orderness"),
            ("windows:\n  pane: 1h\n  length: 90m\n", "windows.length"),
            ("trending:\n  top_k: 0\n", "trending.top_k"),
            ("sources:\n  keyed_by_user: maybe\n", "sources.keyed_by_user"),
            ("sources:\n  interactions: \"bad topic\"\n", "sources.interactions"),
            ("admin:\n  port: 70000\n", "admin.port"),
            ("- a list\n", ""),
        ]
        for (yaml, path) in cases {
            XCTAssertThrowsError(try TopologyLoader.parse(yaml: yaml), yaml) { error in
                XCTAssertTrue(path.isEmpty || "\(error)".contains(path), "\(error) should name \(path)")
                XCTAssertTrue(error is TopologyError, "\(error)")
            }
        }
    }

    func testDurations() {
        XCTAssertEqual(DurationParser.milliseconds("5ms"), 5)
        XCTAssertEqual(DurationParser.milliseconds("5s"), 5_000)
        XCTAssertEqual(DurationParser.milliseconds("10m"), 600_000)
        XCTAssertEqual(DurationParser.milliseconds("7d"), 604_800_000)
        XCTAssertEqual(DurationParser.milliseconds("42"), 42)
        XCTAssertNil(DurationParser.milliseconds("-5s"))
        XCTAssertNil(DurationParser.milliseconds("5 parsecs"))
        XCTAssertEqual(DurationParser.describe(3_600_000), "1h")
    }

    func testRepartitionTopicsAreScopedByGroup() {
        XCTAssertEqual(Topology.itemRepartitionTopic(group: "recs"), "recs-items-repartition")
        XCTAssertNotEqual(Topology.itemRepartitionTopic(group: "a"), Topology.itemRepartitionTopic(group: "b"))
    }
}

extension TopologyLoaderTests {
    /// YAML forbids duplicate keys; accepting them let `{partitions: 2, partitions: 0}` start with 2.
    func testDuplicateKeysAreRefusedWithTheirPath() {
        XCTAssertThrowsError(try TopologyLoader.parse(yaml: "sources: {partitions: 2, partitions: 0}\n")) { error in
            XCTAssertTrue("\(error)".contains("sources.partitions"), "\(error)")
            XCTAssertTrue("\(error)".contains("duplicate key"), "\(error)")
        }
        XCTAssertThrowsError(try TopologyLoader.parse(yaml: "redis:\n  key_prefix: a\nredis:\n  key_prefix: b\n")) { error in
            XCTAssertTrue("\(error)".contains("duplicate key"), "\(error)")
        }
    }
}

extension TopologyLoaderTests {
    /// One topic, one role. A dead-letter topic that was also a source turned
    /// one bad record into thousands in seconds (each letter read back and
    /// dead-lettered again); both sources on one topic read every record twice.
    func testATopicWithTwoRolesIsRefused() {
        let cases = [
            ("sources: {interactions: ix, impressions: im}\ndead_letter_topic: ix\n", "dead_letter_topic", "sources.interactions"),
            ("sources: {interactions: ix, impressions: im}\ndead_letter_topic: im\n", "dead_letter_topic", "sources.impressions"),
            ("sources: {interactions: x1, impressions: x1}\n", "sources.impressions", "sources.interactions"),
            ("sources: {interactions: ix}\nembeddings: {enabled: true, examples: true, examples_topic: ix}\n",
             "embeddings.examples_topic", "sources.interactions"),
            ("dead_letter_topic: ex\nembeddings: {enabled: true, examples: true, examples_topic: ex}\n",
             "embeddings.examples_topic", "dead_letter_topic"),
        ]
        for (yaml, path, other) in cases {
            XCTAssertThrowsError(try TopologyLoader.parse(yaml: yaml), yaml) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(path) && text.contains(other), "\(text) should name \(path) and \(other)")
            }
        }
        // The examples topic only matters when examples are written.
        XCTAssertNoThrow(try TopologyLoader.parse(yaml: "sources: {interactions: ix}\nembeddings: {enabled: false, examples: false, examples_topic: ix}\n"))
        // The group's internal topics take part at start (their names come from the group).
        var topology = Topology()
        topology.sources.interactions = Topology.itemRepartitionTopic(group: "g")
        XCTAssertNoThrow(try topology.checkDistinctTopics(group: nil))
        XCTAssertThrowsError(try topology.checkDistinctTopics(group: "g")) { error in
            XCTAssertTrue("\(error)".contains("g-items-repartition"), "\(error)")
        }
        XCTAssertNoThrow(try Topology().checkDistinctTopics(group: "freshet"), "the defaults are distinct")
    }

    /// A quoted empty name is a value, refused as a topic name (it fell back
    /// to the default as if the key were absent); `key:` alone still means
    /// the default.
    func testAQuotedEmptyTopicNameIsRefused() throws {
        XCTAssertThrowsError(try TopologyLoader.parse(yaml: "dead_letter_topic: \"\"\n")) { error in
            XCTAssertTrue("\(error)".contains("dead_letter_topic"), "\(error)")
        }
        XCTAssertThrowsError(try TopologyLoader.parse(yaml: "sources: {interactions: ''}\n"))
        XCTAssertEqual(try TopologyLoader.parse(yaml: "dead_letter_topic:\n").deadLetterTopic, Topology().deadLetterTopic)
    }
}
