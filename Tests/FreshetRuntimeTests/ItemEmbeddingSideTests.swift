import FreshetCore
import FreshetEmbeddings
import FreshetFeatures
@testable import FreshetRuntime
import XCTest

/// The item side hands its interactions to the joiner as they are (one event
/// model): every action, skips included, gives exactly one example carrying
/// that action. (It used to map actions by name into the embeddings' own enum
/// and silently dropped any action the map missed.)
final class ItemEmbeddingSideTests: XCTestCase {
    final class ExampleOutput: TaskOutput {
        var examples: [(key: String, value: [UInt8])] = []
        func repartition(_ target: RepartitionTarget, key: String, value: [UInt8]) {}
        func broadcast(_ target: RepartitionTarget, value: [UInt8]) {}
        func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput) {}
        func example(key: String, value: [UInt8]) { examples.append((key, value)) }
    }

    func testEveryActionBecomesOneExampleWithThatAction() throws {
        let side = ItemEmbeddingSide(settings: Topology.Embeddings(), counts: InteractionCountView())
        let store = ItemFeatureStore()
        let output = ExampleOutput()
        for (n, action) in Action.allCases.enumerated() {
            let event = ItemEvent(itemId: "i\(n)", userId: "u", ts: 1_732_600_000_000 + Int64(n),
                                  kind: .interaction(action, dwellMs: 100), requestId: "r\(n)")
            side.process(event, store: store, output: output)
        }
        XCTAssertEqual(output.examples.count, Action.allCases.count)
        let examples = try output.examples.map { try ExampleCodec.decodeBundle(ExampleCodec.header + $0.value)[0] }
        XCTAssertEqual(examples.map(\.action), Action.allCases.map { $0 })
        XCTAssertEqual(examples.map(\.label), Action.allCases.map { $0.isPositive ? .positive : .negative })
        XCTAssertEqual(examples.map(\.dwellMs), Array(repeating: 100, count: Action.allCases.count))
        XCTAssertEqual(side.examplesEmitted, Action.allCases.count)
    }
}
