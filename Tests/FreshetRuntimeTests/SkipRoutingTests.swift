import FreshetCore
import FreshetEmbeddings
@testable import FreshetRuntime
import XCTest

/// A skip reaches the item stage only where that stage's join needs it (the
/// examples topic on, the join fed by the sources: input not keyed by user,
/// so no counts stage). The item features and the co-occurrence rows ignore
/// skips, so anywhere else a routed skip was a record produced, fetched and
/// decoded for nothing.
final class SkipRoutingTests: XCTestCase {
    let base: Int64 = 1_767_225_600_000  // 2026-01-01T00:00Z
    let hour: Int64 = 3_600_000

    func interaction(_ user: String, _ item: String, _ action: String, ts: Int64) -> [UInt8] {
        Array(#"{"user_id":"\#(user)","item_id":"\#(item)","action":"\#(action)","ts":\#(ts)}"#.utf8)
    }

    /// Item-stage records that one interaction adds (it moves no watermark:
    /// its time is behind the partition's latest, so no marker follows it).
    func itemRecords(_ d: TaskDriver, for action: String, item: String) -> Int {
        let before = d.recordsAppended[.items, default: 0]
        d.send(.interactions, partition: 0, interaction("u1", item, action, ts: base))
        d.runUntilQuiet()
        return d.recordsAppended[.items, default: 0] - before
    }

    func driver(_ topology: Topology, itemEmbeddings: Bool) -> TaskDriver {
        let d = TaskDriver(topology: topology, interactionPartitions: 1, impressionPartitions: 1, repartitionPartitions: 2,
                           nowMs: base + 48 * hour, itemEmbeddings: itemEmbeddings)
        d.send(.interactions, partition: 0, interaction("u0", "a", "click", ts: base + hour))
        d.runUntilQuiet()
        return d
    }

    func testWhichTopologiesSendSkipsToTheItemStage() {
        var featuresOnly = Topology()
        featuresOnly.embeddings.enabled = false
        var embeddingsWithoutExamples = Topology()
        embeddingsWithoutExamples.embeddings.examples = false
        var unkeyed = Topology()
        unkeyed.sources.keyedByUser = false
        XCTAssertFalse(featuresOnly.itemStageTakesSkips)
        XCTAssertFalse(embeddingsWithoutExamples.itemStageTakesSkips)
        XCTAssertFalse(Topology().itemStageTakesSkips, "the default topology's join takes its copies from the counts stage")
        XCTAssertTrue(unkeyed.itemStageTakesSkips, "without the counts stage the join reads the sources' events")
    }

    /// Features only: a click is routed, a skip is not, and the features are
    /// what they were (a skip changes no feature).
    func testAFeaturesOnlyTopologyKeepsSkipsAtTheSource() {
        var topology = Topology()
        topology.embeddings.enabled = false
        let d = driver(topology, itemEmbeddings: false)
        XCTAssertEqual(itemRecords(d, for: "click", item: "b"), 1)
        XCTAssertEqual(itemRecords(d, for: "skip", item: "c"), 0)
        XCTAssertEqual(d.userFeatures("u1")?.interactionCount, 1)
        XCTAssertNil(d.itemFeatures("c"), "the skipped item has no state anywhere")
    }

    /// Examples on without the counts stage: the skip goes to the item
    /// stage and comes out as a negative example.
    func testAJoinFedByTheSourcesStillGetsSkips() throws {
        var topology = Topology()
        topology.sources.keyedByUser = false
        let d = driver(topology, itemEmbeddings: true)
        XCTAssertEqual(itemRecords(d, for: "skip", item: "c"), 1)
        let examples = try d.examples.flatMap { try ExampleCodec.decodeBundle(ExampleCodec.header + $0) }
        XCTAssertEqual(examples.filter { $0.itemId == "c" }.map(\.label), [.negative])
    }
}
