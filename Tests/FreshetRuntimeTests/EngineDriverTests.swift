import FreshetCore
import FreshetKafka
import FreshetRuntime
import FreshetTestSupport
import FreshetWorkload
import XCTest

/// The real `StreamProcessor` (loop, task manager, checkpointer, rebalance
/// callbacks, fencing, dead letters, store loss) on an in-memory Kafka and
/// Redis, stepped by the test (`EngineDriver`): rebalances, lost partitions
/// and crashes happen between two chosen polls, and every feature must equal
/// the oracle's afterwards, exactly, with one dead letter per bad event.
final class EngineDriverTests: XCTestCase {
    static let partitions: Int32 = 4

    /// A driver with checkpoints every 200 ms of its clock (20 steps) and
    /// 50 records per partition per poll, so a run takes a few hundred steps.
    func makeDriver(checkpointIntervalMs: Int64 = 200) -> EngineDriver {
        var topology = Topology()
        topology.checkpointIntervalMs = checkpointIntervalMs
        let driver = EngineDriver(topology: topology)
        driver.kafka.recordsPerPartitionPerPoll = 50
        driver.createSourceTopics(partitions: Self.partitions)
        return driver
    }

    /// The consumer fetches with 10 ms waits and queue backoffs (librdkafka's
    /// 1 s backoff stalled replays: `KafkaConsumer.streamingDefaults`), with
    /// or without watermark alignment, unless the topology sets its own.
    func testTheConsumerUsesShortFetchBackoffsUnlessTheTopologySetsThem() throws {
        func consumerConfig(_ topology: Topology) throws -> KafkaConfig {
            let driver = EngineDriver(topology: topology)
            driver.createSourceTopics(partitions: 1)
            try driver.startInstance()
            return try XCTUnwrap(driver.cluster.consumerConfigs.last)
        }
        var unaligned = Topology()
        unaligned.eventTime.maxDriftMs = 0  // alignment off
        let config = try consumerConfig(unaligned)
        XCTAssertEqual(config["fetch.queue.backoff.ms"], "10")
        XCTAssertEqual(config["fetch.wait.max.ms"], "10")
        XCTAssertEqual(config["queued.max.messages.kbytes"], "16384", "a quarter of librdkafka's prefetch bound")

        var tuned = unaligned
        tuned.kafka["fetch.queue.backoff.ms"] = "250"
        tuned.kafka["queued.max.messages.kbytes"] = "65536"
        let own = try consumerConfig(tuned)
        XCTAssertEqual(own["fetch.queue.backoff.ms"], "250")
        XCTAssertEqual(own["queued.max.messages.kbytes"], "65536")
        XCTAssertEqual(own["fetch.wait.max.ms"], "10")
    }

    /// Produces a seeded stream (out-of-order, late and bad events, two days
    /// of event time ending at the driver's clock) and returns what the oracle reads.
    func produce(_ driver: EngineDriver, events: Int = 6_000, seed: UInt64 = 42) throws -> FeatureOracle {
        let now = driver.clock.nowMs
        let day: Int64 = 86_400_000
        var config = SyntheticConfig(seed: seed, users: 300, items: 1_500, startMs: now - 3 * day, spanMs: 2 * day, nowMs: now)
        config.outOfOrderMs = 3 * 60_000
        config.lateFraction = 0.02
        config.lateByMs = day...(10 * day)
        config.badFraction = 0.01
        var produced: [FeatureOracle.Event] = []
        for event in SyntheticStream(config: config, count: events) {
            let topic = event.topic == .impressions ? driver.topology.sources.impressions : driver.topology.sources.interactions
            let partition = KafkaProducer.partition(forKey: Array(event.key.utf8), partitionCount: Self.partitions)
            try driver.kafka.append(topic: topic, partition: partition, key: Array(event.key.utf8), value: event.json,
                                    timestampMs: event.timestampMs)
            produced.append(FeatureOracle.Event(topic: topic, partition: partition, body: Self.oracleBody(event)))
        }
        return FeatureOracle(events: produced)
    }

    /// What the oracle reads from a synthetic event.
    static func oracleBody(_ event: SyntheticEvent) -> FeatureOracle.Event.Body {
        switch event.expected {
        case .interaction(let i): .interaction(i)
        case .impression(let i): .impression(i)
        case .bad: .bad
        }
    }

    /// Features equal the oracle's; one dead letter per bad event (with
    /// `lettersMayRepeat`, at least one per bad event, and none for a good one).
    func assertMatchesOracle(_ driver: EngineDriver, _ oracle: FeatureOracle, lettersMayRepeat: Bool = false,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let differences = try oracle.differences(from: driver.redis)
        XCTAssertEqual(differences, [], "features differ from the oracle:\n\(differences.joined(separator: "\n"))",
                       file: file, line: line)
        XCTAssertGreaterThan(oracle.items.values.filter { $0.popularity > 0 }.count, 100, "the window holds counts",
                             file: file, line: line)
        let letters = driver.kafka.partitions(of: driver.topology.deadLetterTopic).flatMap { driver.kafka.records($0) }
        let origins = Set(letters.map { letter in
            ["freshet.source.topic", "freshet.source.partition", "freshet.source.offset"].map { name in
                letter.headers.first { $0.0 == name }.map { String(decoding: $0.1, as: UTF8.self) } ?? "?"
            }.joined(separator: "/")
        })
        XCTAssertGreaterThan(oracle.deadLetters, 20, file: file, line: line)
        XCTAssertEqual(origins.count, oracle.deadLetters, "a dead letter for every bad event, none for a good one", file: file, line: line)
        if !lettersMayRepeat {
            XCTAssertEqual(letters.count, oracle.deadLetters, "one dead letter per bad event", file: file, line: line)
        }
    }

    /// Every other partition of every subscribed topic.
    func half(_ driver: EngineDriver) -> [TopicPartition] {
        driver.subscribedPartitions.filter { $0.partition % 2 == 1 }
    }

    /// Records the processors consumed, summed (replays count twice).
    func consumed(_ driver: EngineDriver) -> Int {
        driver.instances.reduce(0) { $0 + $1.processor.stats.recordsConsumed.value }
    }

    /// Records in every subscribed partition: what one pass without replay consumes.
    func inputRecords(_ driver: EngineDriver) -> Int {
        driver.subscribedPartitions.reduce(0) { $0 + Int(driver.kafka.endOffset($1)) }
    }

    /// `produce`'s stream, read by one processor in a bounded run to its end;
    /// its features checked against the oracle, which is returned.
    @discardableResult
    func produceAndRunToTheEnd(_ driver: EngineDriver) throws -> FeatureOracle {
        let oracle = try produce(driver)
        let a = try driver.startInstance()
        driver.assignEverything(to: a)
        try driver.runToCompletion()
        try assertMatchesOracle(driver, oracle)
        return oracle
    }

    // MARK: - Tests

    /// The baseline: one processor, a bounded run, the oracle's features.
    func testOneProcessorMatchesTheOracle() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        let a = try driver.startInstance()
        driver.assignEverything(to: a)
        try driver.runToCompletion()
        try assertMatchesOracle(driver, oracle)
        XCTAssertEqual(consumed(driver), inputRecords(driver), "nothing replayed without a fault")
        XCTAssertEqual(driver.fencedRefusals, 0)
        // The progress line counts source events only, not the repartition records.
        let sourceEvents = driver.subscribedPartitions.filter { $0.topic == driver.topology.sources.interactions || $0.topic == driver.topology.sources.impressions }
            .reduce(0) { $0 + Int(driver.kafka.endOffset($1)) }
        XCTAssertEqual(sourceEvents, 6_000)
        XCTAssertEqual(a.processor.stats.sourceEventsConsumed.value, sourceEvents)
        XCTAssertGreaterThan(a.processor.stats.recordsConsumed.value, sourceEvents, "repartition records were read too")
    }

    /// `freshet run --stop-at-end` exits 3 when a signal stopped the bounded
    /// run before its end: the processor tells the two apart. Stopped after
    /// a few turns it has not ended, and what it did is committed; a second
    /// bounded run in the group ends, and the features are the oracle's.
    func testABoundedRunStoppedBeforeItsEndSaysSo() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        let first = try driver.startInstance()
        driver.assignEverything(to: first)
        try driver.run(rounds: 3)
        XCTAssertTrue(first.running, "three turns do not finish the input")
        try driver.finish(first)  // what a signal's graceful stop does
        XCTAssertFalse(first.processor.boundedRunEnded)
        let second = try driver.startInstance()
        driver.assignEverything(to: second)
        try driver.runToCompletion()
        XCTAssertTrue(second.processor.boundedRunEnded)
        try assertMatchesOracle(driver, oracle)
    }

    /// A breaker's input: SIGTERM while the broker is frozen took 63 s (the
    /// final checkpoint's producer flush timed out, then the revoke callback
    /// tried the checkpoint again, another 30 s) and exited 0. Now the stop
    /// waits on the broker once, commits nothing past the last checkpoint,
    /// fails with a Kafka error, and the next owner finishes exactly.
    func testAStopWhileTheBrokerAcknowledgesNothingWaitsOnceAndFails() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        driver.kafka.recordsPerPartitionPerPoll = 5
        let first = try driver.startInstance()
        driver.assignEverything(to: first)
        try driver.run(rounds: 40)
        XCTAssertTrue(first.running, "forty turns of five records a partition do not finish the input")
        let committed = driver.kafka.committed[driver.group] ?? [:]
        XCTAssertFalse(committed.isEmpty, "checkpoints were taken before the broker froze")

        driver.kafka.acknowledgesProduced = false
        let flushesBefore = driver.kafka.flushCalls
        XCTAssertThrowsError(try driver.finish(first)) { error in
            XCTAssertTrue("\(error)".hasPrefix("kafka: stopping while the broker does not acknowledge"), "\(error)")
        }
        XCTAssertEqual(driver.kafka.flushCalls - flushesBefore, 2,
                       "one wait for the final checkpoint and a short last one, not a second checkpoint while leaving the group")
        XCTAssertEqual(driver.kafka.committed[driver.group] ?? [:], committed, "nothing committed past the last checkpoint")

        driver.kafka.acknowledgesProduced = true
        let second = try driver.startInstance()
        driver.assignEverything(to: second)
        try driver.runToCompletion()
        try assertMatchesOracle(driver, oracle, lettersMayRepeat: true)
    }

    /// A cooperative rebalance mid-stream moves half the partitions to a
    /// second processor and later back: the old owner flushes, checkpoints and
    /// commits in its revoke callback, the new one restores from that
    /// checkpoint, nothing is counted twice and no write is fenced.
    func testRebalanceMidStreamMovesTasksWithoutDoubleCounting() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        let a = try driver.startInstance()
        let b = try driver.startInstance()
        driver.assignEverything(to: a)
        try driver.run(rounds: 6)
        let moved = half(driver)
        driver.kafka.move(moved, from: a.consumer, to: b.consumer)
        try driver.run(until: { Set(b.consumer.assignment) == Set(moved) }, maxRounds: 10, "b holds the moved partitions")
        // The old owner committed exactly where the new one starts: its checkpoint.
        for tp in moved where driver.kafka.endOffset(tp) > 0 {
            XCTAssertNotNil(driver.kafka.committed[driver.group]?[tp], "\(tp) committed at revoke")
        }
        XCTAssertEqual(Set(a.consumer.assignment), Set(driver.subscribedPartitions).subtracting(moved))
        try driver.run(rounds: 4)
        XCTAssertTrue(a.running && b.running, "both still mid-stream for the second move")
        driver.kafka.move(Array(moved.prefix(moved.count / 2)), from: b.consumer, to: a.consumer)
        try driver.runToCompletion()
        try assertMatchesOracle(driver, oracle)
        XCTAssertEqual(driver.fencedRefusals, 0, "a cooperative handover is never fenced")
        XCTAssertEqual(consumed(driver), inputRecords(driver), "the new owners resumed where the old ones checkpointed")
    }

    /// A processor crashes between two checkpoints (no flush, checkpoint or
    /// commit; features it had handed to its writer land), and a new one
    /// (started after the crash, as a restarted process) takes its tasks:
    /// it restores each from its last checkpoint and replays the records
    /// since, which change nothing (features are absolute; the dead letters
    /// already sent are skipped).
    func testACrashBetweenCheckpointsReplaysExactly() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        let a = try startOneInstanceThroughAFirstCheckpoint(driver)
        // 40 ms of clock on, less than the 200 ms checkpoint interval:
        // records processed, not yet checkpointed.
        try driver.run(rounds: 4)
        let source = TopicPartition(topic: driver.topology.sources.interactions, partition: 0)
        let committedAtCrash = driver.kafka.committed[driver.group]?[source] ?? 0
        XCTAssertLessThan(committedAtCrash, driver.kafka.endOffset(source), "the crash comes before the input's end")
        let held = driver.crash(a, reassignTo: nil)
        let b = try driver.startInstance()
        driver.kafka.assign(held, to: b.consumer)
        try driver.runToCompletion()
        try assertMatchesOracle(driver, oracle)
        XCTAssertGreaterThan(consumed(driver), inputRecords(driver), "the survivor replayed what the crashed one had not checkpointed")
    }

    /// A bounded run shorter than the second between two reports: the
    /// partitioning conflicts its source tasks found are still counted (and
    /// logged) before it exits. Before, nothing reported them at the end, so
    /// a bounded run over unkeyed interactions said nothing (a breaker's finding).
    func testABoundedRunReportsPartitioningConflictsBeforeItExits() throws {
        let driver = makeDriver()
        // Two records a poll: the first report (at the first step) has seen
        // only records keyed as the topology says; the unkeyed ones come after.
        driver.kafka.recordsPerPartitionPerPoll = 2
        let ts = driver.clock.nowMs - 60_000
        let topic = driver.topology.sources.interactions
        func click(_ user: String) -> [UInt8] { Array(#"{"user_id":"\#(user)","item_id":"i1","action":"click","ts":\#(ts)}"#.utf8) }
        for u in 0..<40 {
            let key = Array("u\(u)".utf8)
            try driver.kafka.append(topic: topic, partition: KafkaProducer.partition(forKey: key, partitionCount: Self.partitions),
                                    key: key, value: click("u\(u)"))
        }
        for p in 0..<Self.partitions {
            for u in 0..<3 { try driver.kafka.append(topic: topic, partition: p, key: nil, value: click("v\(u)")) }
        }
        let a = try driver.startInstance()
        driver.assignEverything(to: a)
        try driver.runToCompletion()
        XCTAssertLessThan(a.steps, 100, "the run took less than a second of the driver's clock")
        let metrics = a.processor.stats.metrics.render()
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("freshet_user_key_partitioning_conflicts_total ") }
        XCTAssertEqual(line.map(String.init), "freshet_user_key_partitioning_conflicts_total \(Self.partitions)",
                       "every unkeyed partition counted: \(metrics)")
    }

    /// As above, but the survivor was already running when the other one
    /// crashed: it reads the dead-letter topic from the floor the crashed
    /// owner recorded, although that floor lies past the topic's end as the
    /// survivor knew it at its own start-up, and sends each letter once.
    func testASurvivorRunningBeforeTheCrashSendsEachDeadLetterOnce() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        let a = try driver.startInstance()
        let b = try driver.startInstance()
        driver.assignEverything(to: a)
        try driver.run(until: { !(driver.kafka.committed[driver.group] ?? [:]).isEmpty }, maxRounds: 100, "a first checkpoint")
        try driver.run(rounds: 4)
        driver.crash(a, reassignTo: b)
        try driver.runToCompletion()
        try assertMatchesOracle(driver, oracle)
        XCTAssertGreaterThan(consumed(driver), inputRecords(driver), "the survivor replayed what the crashed one had not checkpointed")
        let letters = driver.kafka.partitions(of: driver.topology.deadLetterTopic).reduce(0) { $0 + driver.kafka.records($1).count }
        // Failed with 8 letters sent twice while the survivor trusted its
        // start-up view of the dead-letter topic's end over the recorded floors.
        XCTAssertEqual(letters, oracle.deadLetters, "one dead letter per bad record after the takeover")
    }

    /// A processor loses half its partitions (its session timed out) and
    /// keeps processing them as a zombie for three more polls after the new
    /// owner took them: the zombie's writes are fenced (refused by epoch),
    /// its commits refused, and the features are still exact. Its dead
    /// letters are not fenced (docs/OPERATIONS.md, "What it does not cover"),
    /// so a bad record may have two; none is missing.
    func testLostPartitionsFenceTheZombie() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        let a = try driver.startInstance()
        let b = try driver.startInstance()
        driver.assignEverything(to: a)
        try driver.run(rounds: 6)
        let lost = half(driver)
        driver.kafka.lose(lost, from: a.consumer, reassignTo: b.consumer, noticeAfterPolls: 3)
        try driver.step(b)
        XCTAssertEqual(Set(b.consumer.assignment), Set(lost), "the new owner took the lost partitions at once")
        for _ in 0..<3 { try driver.step(a) }
        XCTAssertGreaterThan(driver.fencedRefusals, 0, "the zombie's writes were refused")
        try driver.runToCompletion()
        try assertMatchesOracle(driver, oracle, lettersMayRepeat: true)
    }

    /// Redis writes take 5 ms each and a checkpoint is due at every step, so
    /// feature batches and checkpoints are in flight in the writer whenever
    /// the revoke callback runs: it must wait for them before committing,
    /// and the new owner must restore the checkpoint the revoke wrote.
    func testARevokeWithWritesInFlightCommitsOnlyWhatLanded() throws {
        let driver = makeDriver(checkpointIntervalMs: 10)
        driver.redis.pipelineDelayMs = 5
        let oracle = try produce(driver, events: 3_000)
        let a = try driver.startInstance()
        let b = try driver.startInstance()
        driver.assignEverything(to: a)
        try driver.run(rounds: 8)
        let moved = half(driver)
        driver.kafka.move(moved, from: a.consumer, to: b.consumer)
        try driver.runToCompletion()
        driver.redis.pipelineDelayMs = 0
        try assertMatchesOracle(driver, oracle)
        XCTAssertEqual(driver.fencedRefusals, 0)
        XCTAssertEqual(consumed(driver), inputRecords(driver), "the new owner resumed at the revoke's checkpoint")
    }

    /// Redis restarts empty mid-stream (no persistence): the next checkpoint
    /// notices (a new run_id, missing epochs), rebuilds every task from
    /// offset 0, and the features converge to the oracle's. The dead-letter
    /// floors went with Redis, so a rebuilt task reads the whole dead-letter
    /// topic and its replay sends no letter twice (it used to send its
    /// partition's letters again).
    func testRedisRestartedEmptyRebuildsExactly() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        try startOneInstanceThroughAFirstCheckpoint(driver)
        try driver.run(rounds: 10)
        driver.redis.restartEmpty()
        try driver.runToCompletion()
        try assertMatchesOracle(driver, oracle)
        XCTAssertGreaterThan(consumed(driver), inputRecords(driver), "the lost tasks were rebuilt by replaying their input")
    }

    /// The whole store lost at once: every source task is rebuilt in the same
    /// pass (the check after the restart), and the dead-letter topic is read
    /// from its start once for all of them, not once per task.
    func testAWholeStoreLossReadsTheDeadLetterTopicOncePerRebuildPass() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        try startOneInstanceThroughAFirstCheckpoint(driver)
        try driver.run(rounds: 10)
        let readsBefore = driver.cluster.readsFromTheBeginning
        driver.redis.restartEmpty()
        try driver.run(until: { driver.cluster.readsFromTheBeginning > readsBefore }, maxRounds: 200, "the rebuild")
        try driver.run(rounds: 5)
        XCTAssertEqual(driver.cluster.readsFromTheBeginning - readsBefore, 1,
                       "one read of the dead-letter topic for all the source tasks rebuilt together (the old code read it once per task)")
        try driver.runToCompletion()
        try assertMatchesOracle(driver, oracle)
    }

    /// One instance owning every partition, run until its first checkpoint committed offsets.
    @discardableResult
    func startOneInstanceThroughAFirstCheckpoint(_ driver: EngineDriver, stopAtEnd: Bool = true) throws -> EngineDriver.Instance {
        let a = try driver.startInstance(stopAtEnd: stopAtEnd)
        driver.assignEverything(to: a)
        try driver.run(until: { !(driver.kafka.committed[driver.group] ?? [:]).isEmpty }, maxRounds: 100, "a first checkpoint")
        return a
    }
}
