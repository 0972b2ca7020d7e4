import FreshetRedis
@testable import FreshetRuntime
import FreshetTestSupport
import XCTest

/// Instances of one group on different topologies: refused with the
/// differences named, instead of writing mixed results (a known limit until
/// the eighteenth session: docs/OPERATIONS.md, "Scaling").
final class GroupTopologyRegistryTests: XCTestCase {
    let nowMs: Int64 = 1_767_225_600_000

    // MARK: The settings compared

    func testOperationalSettingsMayDifferButTheGroupsMayNot() {
        let base = Topology()
        var operational = base
        operational.admin.port = 9999
        operational.progressIntervalMs = 1_000
        operational.kafka["fetch.wait.max.ms"] = "50"
        operational.redis.flushIntervalMs = 20
        operational.checkpointIntervalMs = 60_000
        operational.embeddings.syncIntervalMs = 1_000
        operational.output.maxMessageBytes = 500_000
        XCTAssertEqual(operational.groupSettings, base.groupSettings)

        let changes: [(String, (inout Topology) -> Void)] = [
            ("embeddings.examples", { $0.embeddings.examples = false }),
            ("embeddings.dimension", { $0.embeddings.dimension = 128 }),
            ("windows.pane", { $0.windows.paneMs = 600_000 }),
            ("event_time.out_of_orderness", { $0.eventTime.outOfOrdernessMs = 1_000 }),
            ("sources.keyed_by_user", { $0.sources.keyedByUser = false }),
            ("checkpoint.interval", { $0.checkpointIntervalMs = 0 }),
            ("redis.key_prefix", { $0.redis.keyPrefix = "b:" }),
        ]
        for (name, change) in changes {
            var other = base
            change(&other)
            let differences = Topology.groupSettingDifferences(mine: base.groupSettings, theirs: other.groupSettings)
            XCTAssertTrue(differences.contains { $0.hasPrefix(name + ":") }, "\(name): \(differences)")
        }
    }

    func testDifferencesNameBothValuesAndSettingsOnlyOneSideHas() {
        var other = Topology()
        other.embeddings.examples = false  // drops the examples' own lines, and alignment's default with them
        let differences = Topology.groupSettingDifferences(mine: Topology().groupSettings, theirs: other.groupSettings)
        XCTAssertEqual(differences, [
            "event_time.max_drift: 10m here, off there",
            "embeddings.examples: true here, false there",
            "embeddings.examples_topic: freshet-examples here, (not set) there",
            "embeddings.join_window: 10m here, (not set) there",
        ])
    }

    // MARK: The verdicts

    func registry(_ id: String, _ settings: String = "a=1") -> GroupTopologyRegistry {
        GroupTopologyRegistry(memberId: id, settings: settings, group: "g")
    }

    func entry(registered: Int64, expires: Int64, _ settings: String) -> String {
        GroupTopologyRegistry.MemberEntry(registeredMs: registered, expiresMs: expires, settings: settings).encoded
    }

    func testAStartIsRefusedByALiveMemberWithOtherSettingsOnly() {
        let me = registry("b")
        let live = ["a": entry(registered: nowMs - 60_000, expires: nowMs + 12_500, "a=2")]
        guard case .refuse(let message) = me.judge(live, nowMs: nowMs).verdict else { return XCTFail("not refused") }
        XCTAssertTrue(message.contains("a: 1 here, 2 there"), message)
        XCTAssertTrue(message.contains("expires within 13 s"), message)

        XCTAssertEqual(me.judge(["a": entry(registered: nowMs, expires: nowMs + 1, "a=1")], nowMs: nowMs).verdict, .agreed)
        let expired = me.judge(["a": entry(registered: nowMs - 60_000, expires: nowMs, "a=2")], nowMs: nowMs)
        XCTAssertEqual(expired.verdict, .agreed)
        XCTAssertEqual(expired.expired, ["a"])
        XCTAssertEqual(me.judge(["a": "2\nsomething newer"], nowMs: nowMs).verdict, .agreed, "an unreadable entry is not trusted")
        XCTAssertEqual(me.judge(["b": entry(registered: nowMs, expires: nowMs + 9, "a=2")], nowMs: nowMs).verdict, .agreed,
                       "its own entry (from before a restart in place) is not another member")
    }

    func testOfTwoRegisteredMembersTheLaterStops() {
        var early = registry("x")
        var late = registry("a", "a=2")
        let earlyEntry = early.entry(nowMs: nowMs).encoded
        let lateEntry = late.entry(nowMs: nowMs + 1).encoded
        let entries = ["x": earlyEntry, "a": lateEntry]
        guard case .refuse = late.judge(entries, nowMs: nowMs + 2).verdict else { return XCTFail("the later one goes on") }
        guard case .warn(let warning) = early.judge(entries, nowMs: nowMs + 2).verdict else { return XCTFail("no warning") }
        XCTAssertTrue(warning.contains("stops at its next heartbeat"), warning)

        // The same millisecond: the greater member id stops.
        var tied = registry("z", "a=2")
        let tiedEntries = ["x": earlyEntry, "z": tied.entry(nowMs: nowMs).encoded]
        guard case .refuse = tied.judge(tiedEntries, nowMs: nowMs + 2).verdict else { return XCTFail("z goes on") }
        guard case .warn = early.judge(tiedEntries, nowMs: nowMs + 2).verdict else { return XCTFail("x stops") }
    }

    // MARK: Through the engine (in-memory Kafka and Redis, manual clock)

    func otherTopology() -> Topology {
        var topology = Topology()
        topology.windows.paneMs = 600_000
        return topology
    }

    func testASecondInstanceWithAnotherTopologyIsRefusedUntilTheFirstStops() throws {
        let driver = EngineDriver()
        driver.createSourceTopics(partitions: 2)
        let first = try driver.startInstance(stopAtEnd: false)
        XCTAssertThrowsError(try driver.startInstance(stopAtEnd: false, topology: otherTopology())) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("configuration: instance "), text)
            XCTAssertTrue(text.contains("windows.pane: 10m here, 1h there"), text)
        }
        XCTAssertNoThrow(try driver.startInstance(stopAtEnd: false), "the same topology joins")
        try driver.finish(first)
        try driver.finish(driver.instances[1])
        XCTAssertNoThrow(try driver.startInstance(stopAtEnd: false, topology: otherTopology()),
                         "every instance of the old topology stopped: the new one starts")
    }

    func testAKilledInstancesEntryBlocksAnotherTopologyUntilItExpires() throws {
        let driver = EngineDriver()
        driver.createSourceTopics(partitions: 2)
        let first = try driver.startInstance(stopAtEnd: false)
        driver.crash(first, reassignTo: nil)
        XCTAssertThrowsError(try driver.startInstance(stopAtEnd: false, topology: otherTopology()))
        driver.clock.advance(by: GroupTopologyRegistry.ttlMs)
        XCTAssertNoThrow(try driver.startInstance(stopAtEnd: false, topology: otherTopology()))
    }

    func testOfTwoInstancesThatStartedTogetherTheLaterStopsAtItsHeartbeat() throws {
        let driver = EngineDriver()
        driver.createSourceTopics(partitions: 2)
        let first = try driver.startInstance(stopAtEnd: false)
        // As if both had read the members before either wrote its entry.
        let key = RedisKeys(prefix: "", group: driver.group).groupMembers
        let saved = try driver.redis.hgetall(key)
        _ = try driver.redis.command(["DEL", key])
        driver.clock.advance(by: 1)
        let second = try driver.startInstance(stopAtEnd: false, topology: otherTopology())
        for (field, value) in saved { _ = try driver.redis.command([Array("HSET".utf8), Array(key.utf8), Array(field.utf8), value]) }

        var stopped: Error?
        for _ in 0..<(Int(GroupTopologyRegistry.heartbeatMs / driver.stepMs) + 2) {
            try driver.step(first)
            do { try driver.step(second) } catch { stopped = error; break }
        }
        let text = stopped.map { "\($0)" } ?? "not stopped"
        XCTAssertTrue(text.contains("windows.pane: 10m here, 1h there"), text)
        XCTAssertTrue(first.running, "the member registered first goes on")
        XCTAssertNoThrow(try driver.step(first))
    }
}
