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
        func example(key: String, value: UnsafeRawBufferPointer) { examples.append((key, Array(value))) }
    }

    func testEveryActionBecomesOneExampleWithThatAction() throws {
        let side = ItemEmbeddingSide(settings: Topology.Embeddings(), counts: InteractionCountView())
        let store = ItemFeatureStore()
        let output = ExampleOutput()
        for (n, action) in Action.allCases.enumerated() {
            let event = ItemEvent(itemId: "i\(n)", userId: "u", ts: 1_732_600_000_000 + Int64(n),
                                  kind: .interaction(action, dwellMs: 100), requestId: "r\(n)")
            side.process(event, origin: RecordOrigin(sourceTopic: 0, partition: 0, offset: Int64(n)), store: store, output: output)
        }
        XCTAssertEqual(output.examples.count, Action.allCases.count)
        let examples = try output.examples.map { try ExampleCodec.decodeBundle(ExampleCodec.header + $0.value)[0] }
        XCTAssertEqual(examples.map(\.action), Action.allCases.map { $0 })
        XCTAssertEqual(examples.map(\.label), Action.allCases.map { $0.isPositive ? .positive : .negative })
        XCTAssertEqual(examples.map(\.dwellMs), Array(repeating: 100, count: Action.allCases.count))
        XCTAssertEqual(side.examplesEmitted, Action.allCases.count)
    }
}

/// The item side's change tracking (by row number, no hashing per positive):
/// each changed row goes to the checkpoint once per interval, evicted rows
/// are left out, and a row reused by a newly admitted item carries that item.
final class ItemEmbeddingSideTrackingTests: XCTestCase {
    private var offset: Int64 = 0

    private func positive(_ side: ItemEmbeddingSide, item: String, after history: [String], ts: Int64) throws {
        try routedPositive(side, item: item, after: history, ts: ts, offset: &offset)
    }

    func testChangedRowsAreTakenOnceAndEvictedRowsAreLeftOut() throws {
        var settings = Topology.Embeddings()
        settings.ttlMs = 1_000
        let side = ItemEmbeddingSide(settings: settings, counts: InteractionCountView())
        try positive(side, item: "a", after: ["b"], ts: 100)
        try positive(side, item: "a", after: ["c", "a"], ts: 200)
        try positive(side, item: "b", after: ["a"], ts: 300)
        XCTAssertEqual(side.positives, 3)
        XCTAssertEqual(side.takeCheckpointRows().map(\.0), ["a", "b"], "each changed row once, in first-change order")
        XCTAssertEqual(side.takeCheckpointRows().map(\.0), [], "taking clears the flags")
        XCTAssertEqual(side.rows.row(of: ByteId("a"))?.sorted { $0.0 < $1.0 }.map { "\($0.0.string)=\($0.1)" }, ["b=1", "c=1"],
                       "the item itself in its history is not a neighbour")

        // "a" changes, then expires (with "b") before the checkpoint: it is not written (its fields go instead).
        try positive(side, item: "a", after: ["b"], ts: 400)
        side.advance(watermark: 1_450, output: NoOutput())
        XCTAssertNil(side.rows.row(of: ByteId("a")))
        XCTAssertEqual(side.takeEvictedForCheckpoint().map(\.string), ["a", "b"])
        XCTAssertEqual(side.takeCheckpointRows().map(\.0), [])

        // "e" changes, expires, and its freed row is reused by "d" before the checkpoint: "d" is written.
        try positive(side, item: "e", after: ["c"], ts: 1_500)
        side.advance(watermark: 2_600, output: NoOutput())
        try positive(side, item: "d", after: ["c", "e"], ts: 2_600)
        XCTAssertEqual(side.takeCheckpointRows().map(\.0), ["d"])
        XCTAssertEqual(side.rows.row(of: ByteId("d"))?.map { "\($0.0.string)=\($0.1)" }.sorted(), ["c=1", "e=1"])
        XCTAssertEqual(side.rows.degree(of: ByteId("d")), 1)
        XCTAssertEqual(side.positives, 6)
    }
}

/// Eviction (`ttl`) against published refreshes: a refreshed item keeps its
/// vector until a refresh without it is published (user vectors are means
/// of that refresh), so it is never deleted while users still count it, and
/// one seen again before then needs nothing written back; a fold-in goes at
/// once. (A breaker found users counting evicted items Redis no longer
/// served, and items seen again left without a vector.)
final class ItemEmbeddingSideEvictionTests: XCTestCase {
    private var offset: Int64 = 0

    private func positive(_ side: ItemEmbeddingSide, item: String, after history: [String], ts: Int64) throws {
        try routedPositive(side, item: item, after: history, ts: ts, offset: &offset)
    }

    private func refresh(_ side: ItemEmbeddingSide, after previous: ItemVectorSet?) -> ItemVectorSet {
        SpectralRefresh.refresh(SymmetricSparseMatrix(side.rows.snapshot()), dimension: 2, previous: previous, iterations: 8, seed: 42)
    }

    /// An item whose key Redis refused gets its vector written again at the
    /// next publication, though nothing changed (`RefusedEntity`); once.
    func testARefusedItemsVectorIsWrittenAgainAtTheNextPublication() throws {
        let side = ItemEmbeddingSide(settings: Topology.Embeddings(), counts: InteractionCountView())
        for (k, item) in ["a", "b", "c"].enumerated() {
            try positive(side, item: item, after: ["a", "b", "c"].filter { $0 != item }, ts: 100 + Int64(k))
        }
        let v1 = refresh(side, after: nil)
        _ = side.takePublication(v1) { _ in true }
        XCTAssertEqual(side.takePublication(v1) { _ in true }.vectors.count, 0, "nothing changed")

        side.rewrite(itemId: "b")
        XCTAssertTrue(side.rewritePending)
        let again = side.takePublication(v1) { _ in true }
        XCTAssertEqual(again.vectors.map(\.id.string), ["b"])
        XCTAssertEqual(again.vectors.first?.vector, v1.vector(ByteId("b")), "the published refresh's vector")
        XCTAssertFalse(side.rewritePending)
        XCTAssertEqual(side.takePublication(v1) { _ in true }.vectors.count, 0, "once")
    }

    /// The side folds items in through its rows' interned numbers mapped to
    /// the set's rows; the vectors are the id form's (`ItemVectorSet.foldedVector(_:degree:row:)`)
    /// bit for bit, also after the rows interned new ids (the map grows) and
    /// for the next refresh (the map is rebuilt: a stale one would fold in
    /// against the old set's rows).
    func testFoldInsEqualTheIdFormsAcrossNewIdsAndANewRefresh() throws {
        let side = ItemEmbeddingSide(settings: Topology.Embeddings(), counts: InteractionCountView())
        let seed = ["a", "b", "c", "d"]
        for (k, item) in seed.enumerated() {
            try positive(side, item: item, after: seed.filter { $0 != item }, ts: 100 + Int64(k))
        }
        let v1 = refresh(side, after: nil)
        _ = side.takePublication(v1) { _ in true }

        func checkFoldIns(_ set: ItemVectorSet, expected: Set<String>, _ message: String) {
            let published = side.takePublication(set) { _ in true }.vectors.filter(\.foldedIn)
            XCTAssertEqual(Set(published.map(\.id.string)), expected, message)
            for item in published {
                let row = side.rows.row(of: item.id) ?? []
                let byIds = set.foldedVector(item.id, degree: side.rows.degree(of: item.id), row: row)?.0
                XCTAssertNotNil(byIds, message)
                XCTAssertEqual(item.vector, byIds, "\(item.id.string): \(message)")
            }
        }
        try positive(side, item: "e", after: ["a", "c"], ts: 200)
        checkFoldIns(v1, expected: ["e"], "first fold-in")
        // New ids interned after the map was built: "f" and "g" as neighbours of "e".
        try positive(side, item: "e", after: ["f", "b", "g"], ts: 210)
        try positive(side, item: "h", after: ["e", "d", "a"], ts: 220)
        checkFoldIns(v1, expected: ["e", "h"], "neighbours interned since")

        // A new refresh without "d" (a different row order): fold-ins resolve against it.
        let v2 = SpectralRefresh.refresh(SymmetricSparseMatrix(side.rows.snapshot(only: ["a", "b", "c", "e"].map { ByteId($0) })),
                                         dimension: 2, previous: v1, iterations: 8, seed: 42)
        XCTAssertNil(v2.rowOf[ByteId("d")])
        _ = side.takePublication(v2) { _ in true }
        try positive(side, item: "h", after: ["d", "a"], ts: 230)
        checkFoldIns(v2, expected: ["h"], "after a new refresh")
    }

    func testARefreshedItemKeepsItsVectorUntilARefreshWithoutItIsPublished() throws {
        var settings = Topology.Embeddings()
        settings.ttlMs = 1_000
        let side = ItemEmbeddingSide(settings: settings, counts: InteractionCountView())
        for (k, item) in ["a", "b", "c"].enumerated() {
            try positive(side, item: item, after: ["a", "b", "c"].filter { $0 != item }, ts: 100 + Int64(k))
        }
        let v1 = refresh(side, after: nil)
        XCTAssertEqual(Set(v1.items.map(\.string)), ["a", "b", "c"])
        let first = side.takePublication(v1) { _ in true }
        XCTAssertEqual(Set(first.vectors.map(\.id.string)), ["a", "b", "c"])
        XCTAssertTrue(first.vectors.allSatisfy { !$0.foldedIn })

        // b and c stay; a expires; f arrives (a fold-in) and expires too.
        try positive(side, item: "b", after: ["c"], ts: 1_200)
        try positive(side, item: "c", after: ["b"], ts: 1_200)
        try positive(side, item: "f", after: ["b"], ts: 300)
        let folded = side.takePublication(v1) { _ in true }
        XCTAssertEqual(folded.vectors.filter(\.foldedIn).map(\.id.string), ["f"])
        side.advance(watermark: 1_350, output: NoOutput())
        XCTAssertNil(side.rows.row(of: ByteId("a")))
        let afterEviction = side.takePublication(v1) { _ in true }
        XCTAssertEqual(afterEviction.deleted.map(\.string), ["f"], "the fold-in goes; a stays while v1 is published")

        // a is seen again before the next publication: nothing to write back.
        try positive(side, item: "a", after: ["b"], ts: 1_400)
        let again = side.takePublication(v1) { _ in true }
        XCTAssertEqual(again.vectors.map(\.id.string), [], "a's v1 vector is still in place")
        XCTAssertEqual(again.deleted, [])

        // a expires again; the next refresh has no row for it: at its
        // publication a's fields go (and only for the partition that owns it).
        try positive(side, item: "b", after: ["c"], ts: 2_500)
        try positive(side, item: "c", after: ["b"], ts: 2_500)
        side.advance(watermark: 2_450, output: NoOutput())
        XCTAssertNil(side.rows.row(of: ByteId("a")))
        let v2 = refresh(side, after: v1)
        XCTAssertNil(v2.rowOf[ByteId("a")])
        let switched = side.takePublication(v2) { $0.string != "x" }
        XCTAssertEqual(switched.deleted.map(\.string), ["a"])
        XCTAssertEqual(Set(switched.vectors.map(\.id.string)), ["b", "c"])
    }
}

/// A routed positive read in place, as the item stage reads it with examples
/// off (each with the next offset of its partition).
private func routedPositive(_ side: ItemEmbeddingSide, item: String, after history: [String], ts: Int64,
                            offset: inout Int64) throws {
    offset += 1
    let event = ItemEvent(itemId: item, userId: "u", ts: ts, kind: .interaction(.click, dwellMs: nil), userHistory: history)
    let bytes = RepartitionRecord.item(event, origin: RecordOrigin(sourceTopic: 0, partition: 0, offset: offset)).encoded()
    try bytes.withUnsafeBytes { raw in side.observePositive(try XCTUnwrap(try RepartitionRecord.itemView(raw))) }
}

/// Item-side output that must not be used with examples off.
private final class NoOutput: TaskOutput {
    func repartition(_ target: RepartitionTarget, key: String, value: [UInt8]) { XCTFail("unexpected repartition") }
    func broadcast(_ target: RepartitionTarget, value: [UInt8]) { XCTFail("unexpected broadcast") }
    func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput) { XCTFail("unexpected dead letter") }
    func example(key: String, value: UnsafeRawBufferPointer) { XCTFail("unexpected example") }
}
