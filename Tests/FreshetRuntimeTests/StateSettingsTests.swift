@testable import FreshetRuntime
import FreshetTestSupport
import XCTest

/// A group's later run under settings its checkpointed state does not fit
/// (other source topics, another pane length or trending half-life, the
/// examples turned on again) is refused instead of exiting 0 with features
/// wrong (a breaker's findings: skipped records, empty windows, scores on
/// two scales, examples' counts missing positives).
final class StateSettingsVerdictTests: XCTestCase {
    private func verdict(_ recorded: [String: String], _ change: (inout Topology) -> Void) -> StateSettingsVerdict {
        var topology = Topology()
        change(&topology)
        return StateSettingsVerdict(recorded: recorded, current: topology.stateSettings)
    }

    private var recordedDefaults: [String: String] {
        Dictionary(uniqueKeysWithValues: Topology().stateSettings.map { ($0.name, $0.value) })
    }

    func testTheSameSettingsAndANewGroupPass() {
        XCTAssertEqual(verdict(recordedDefaults) { _ in }, StateSettingsVerdict(recorded: [:], current: []))
        XCTAssertEqual(verdict([:]) { $0.windows.paneMs = 1_800_000 }.refused, [], "no record: a new group")
        XCTAssertEqual(verdict(recordedDefaults) { $0.trending.topK = 100; $0.windows.lengthMs = 3 * 86_400_000 }.refused, [],
                       "settings the state does not depend on")
    }

    func testEachStateSettingChangeIsRefusedWithBothValues() {
        let pane = verdict(recordedDefaults) { $0.windows.paneMs = 7_200_000 }.refused
        XCTAssertEqual(pane, ["windows.pane: 1h in the group's checkpoints, 2h now"])
        XCTAssertEqual(verdict(recordedDefaults) { $0.trending.halfLifeMs = 7_200_000 }.refused.count, 1)
        let topics = verdict(recordedDefaults) { $0.sources.interactions = "clicks-v2"; $0.sources.impressions = "shown-v2" }.refused
        XCTAssertEqual(topics.count, 2)
        XCTAssertTrue(topics[0].hasPrefix("sources.interactions: ") && topics[0].hasSuffix(", clicks-v2 now"), topics[0])
    }

    func testTheExamplesMayBeTurnedOffButNotOnAgain() {
        XCTAssertTrue(Topology().embeddings.enabled && Topology().embeddings.examples, "the default topology has both")
        let off = verdict(recordedDefaults) { $0.embeddings.examples = false }
        XCTAssertEqual(off.refused, [])
        var recordedOff = recordedDefaults
        recordedOff["embeddings.examples"] = "false"
        XCTAssertEqual(verdict(recordedOff) { _ in }.refused, ["embeddings.examples: false in the group's checkpoints, true now"])
    }

    func testEmbeddingsTurnedOnAreWarnedAboutNotRefused() {
        var recordedOff = recordedDefaults
        recordedOff["embeddings.enabled"] = "false"
        recordedOff["embeddings.examples"] = "false"
        let on = verdict(recordedOff) { $0.embeddings.examples = false }
        XCTAssertEqual(on.refused, [])
        XCTAssertEqual(on.warnings.count, 1)
        XCTAssertEqual(verdict(recordedDefaults) { $0.embeddings.enabled = false }, StateSettingsVerdict(recorded: [:], current: []),
                       "turning them off: nothing to say")
    }
}

extension EngineDriverTests {
    /// Through the engine: the first run records its settings, a rerun with
    /// the same ones passes, one with another pane length or source topic is
    /// refused at start, and the record is left as it was.
    func testARunUnderOtherStateSettingsIsRefusedAtStart() throws {
        let driver = makeDriver()
        try produceAndRunToTheEnd(driver)
        XCTAssertEqual(try driver.redis.command(["HGET", "freshet:\(driver.group):state_settings", "windows.pane"]).string, "1h")

        try driver.finish(try driver.startInstance())  // the same settings start (and leave the group's members)
        var otherPane = driver.topology
        otherPane.windows.paneMs = 7_200_000
        otherPane.windows.lengthMs = 14 * 86_400_000
        XCTAssertThrowsError(try driver.startInstance(topology: otherPane)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("windows.pane: 1h in the group's checkpoints, 2h now") && text.contains("use a new group"), text)
        }
        var otherTopic = driver.topology
        otherTopic.sources.interactions += "-v2"
        XCTAssertThrowsError(try driver.startInstance(topology: otherTopic)) { error in
            XCTAssertTrue("\(error)".contains("sources.interactions: "), "\(error)")
        }
        XCTAssertEqual(try driver.redis.command(["HGET", "freshet:\(driver.group):state_settings", "windows.pane"]).string, "1h",
                       "a refused start records nothing")
    }
}

extension EngineDriverTests {
    /// A checkpoint's meta hash of the wrong type (an operator's `SET` on
    /// it) stops the takeover with Redis's error and the key: it was read as
    /// "no checkpoint", so the task was treated as never checkpointed.
    func testACheckpointKeyOfTheWrongTypeStopsTheTakeoverNamingTheKey() throws {
        let driver = makeDriver()
        try produceAndRunToTheEnd(driver)
        let meta = "freshet:\(driver.group):ckpt:interactions-0:meta"
        XCTAssertFalse(try driver.redis.command(["HGETALL", meta]).array?.isEmpty ?? true, "the first run checkpointed the task")
        _ = try driver.redis.command(["DEL", meta])
        _ = try driver.redis.command(["SET", meta, "not a hash"])

        let b = try driver.startInstance()
        driver.assignEverything(to: b)
        XCTAssertThrowsError(try driver.runToCompletion()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("WRONGTYPE") && text.contains(meta), text)
        }
    }
}
