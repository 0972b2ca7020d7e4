import XCTest
@testable import FreshetEmbeddings
import FreshetCore

/// The row pruning by selection keeps exactly what the definition keeps (the
/// `rowKeep` largest counts, ties by the smaller id bytes), and the direct
/// checkpoint encoding equals the codec's.
final class CooccurrencePruneTests: XCTestCase {
    /// Small rows, so that pruning happens often.
    static func config(capacity: Int, keep: Int, history: Int) -> CooccurrenceConfig {
        var config = CooccurrenceConfig(dimension: 4)
        config.rowCapacity = capacity
        config.rowKeep = keep
        config.history = history
        return config
    }

    /// Seeded stream of positives on a few items with many neighbours and
    /// heavy ties (counts 1-3), ids of different lengths sharing prefixes.
    func testPruneKeepsTheLargestCountsWithTiesBrokenByIdBytes() {
        let config = Self.config(capacity: 30, keep: 12, history: 10)
        let rows = CooccurrenceRows(config: config)
        // A shadow of every count, pruned by the definition (full sort).
        var shadow: [ByteId: [ByteId: UInt32]] = [:]
        var state: UInt64 = 7
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        let items = (0..<3).map { ByteId("item\($0)") }
        let pool = (0..<80).map { ByteId(["n", "n1", "n10", "nb", "x"][$0 % 5] + String($0 * 7 % 13)) }
        for t in 0..<2_000 {
            let item = items[next(items.count)]
            var history: [ByteId] = []
            for _ in 0..<config.history {
                let j = pool[next(pool.count)]
                if !history.contains(j) { history.append(j) }
            }
            rows.observePositive(item: item, history: history, ts: Int64(t))
            var row = shadow[item, default: [:]]
            for j in history where j != item { row[j, default: 0] += 1 }
            if row.count > config.rowCapacity {
                let kept = row.sorted { a, b in a.value != b.value ? a.value > b.value : a.key < b.key }.prefix(config.rowKeep)
                row = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
            }
            shadow[item] = row
        }
        for item in items {
            let got = Dictionary(uniqueKeysWithValues: rows.row(of: item)!.map { ($0.0, $0.1) })
            XCTAssertEqual(got, shadow[item]!, "\(item.string)")
        }
        XCTAssertEqual(rows.entryCount, shadow.values.reduce(0) { $0 + $1.count })
    }

    /// The selection behind pruning returns what a descending sort puts at
    /// k − 1, on rows of mostly equal counts (a three-way partition's case)
    /// and on distinct ones, for every k.
    func testSelectionOfTheKthLargestMatchesASort() {
        var random = FreshetCore.SplitMix64(seed: 11)
        for round in 0..<200 {
            let n = 1 + random.nextInt(250)
            let spread = round % 3 == 0 ? 3 : 1_000
            let values = (0..<n).map { _ in UInt32(1 + random.nextInt(spread)) }
            let sorted = values.sorted(by: >)
            for k in [1, n, 1 + random.nextInt(n)] {
                var copy = values
                let got = copy.withUnsafeMutableBufferPointer { CooccurrenceRows.largest(k, of: $0) }
                XCTAssertEqual(got, sorted[k - 1], "k \(k) of \(values)")
            }
        }
    }

    /// The counting against a plain dictionary (no pruning: rows stay under
    /// capacity): ids keep appearing for the first time, repeated within a
    /// positive's history and as the item itself, so a number looked up
    /// before the positive interns anything must not be reused for a new id.
    func testCountingMatchesADictionaryOracleAsNewIdsArrive() {
        var config = Self.config(capacity: 10_000, keep: 5_000, history: 6)
        config.admitAfter = 1
        let rows = CooccurrenceRows(config: config)
        var oracle: [String: [String: UInt32]] = [:]
        var degrees: [String: Int64] = [:]
        var random = FreshetCore.SplitMix64(seed: 11)
        for t in 0..<3_000 {
            // New ids arrive all the time: the id space grows with t.
            func id() -> String { "n\(random.nextInt(10 + t / 4))" }
            let item = id()
            var history = (0..<random.nextInt(9)).map { _ in id() }
            if t % 7 == 0 { history.insert(item, at: random.nextInt(history.count + 1)) }
            if t % 5 == 0, let first = history.first { history.append(first) }
            let encoded = FreshetCore.ItemEvent.encodeHistory(history)
            let row = Array(item.utf8).withUnsafeBytes { itemBytes in
                encoded.withUnsafeBytes { rows.observePositive(itemBytes: itemBytes, ts: Int64(t), encodedHistory: $0) }
            }
            XCTAssertNotNil(row, "admitted at once")
            degrees[item, default: 0] += 1
            var counted: [String] = []
            for j in history where j != item && !counted.contains(j) && counted.count < config.history { counted.append(j) }
            for j in counted { oracle[item, default: [:]][j, default: 0] += 1 }
        }
        XCTAssertEqual(rows.count, degrees.count)
        XCTAssertEqual(rows.entryCount, oracle.values.reduce(0) { $0 + $1.count })
        for (item, degree) in degrees {
            XCTAssertEqual(rows.degree(of: ByteId(item)), degree, item)
            let got = Dictionary(uniqueKeysWithValues: (rows.row(of: ByteId(item)) ?? []).map { ($0.0.string, $0.1) })
            XCTAssertEqual(got, oracle[item] ?? [:], "row of \(item)")
        }
    }

    /// The counter thread's path (each history as the routed record carries
    /// it, read in place, a batch of up to 64 ids, longer histories through
    /// the copying path) counts what the `ByteId` path counts: the same rows,
    /// degrees and entries, with repeats, the item in its own history, empty
    /// and over-long histories.
    func testBatchedCountingMatchesTheOneByOnePath() {
        let config = Self.config(capacity: 40, keep: 20, history: 70)
        let batched = CooccurrenceRows(config: config)
        let single = CooccurrenceRows(config: config)
        var random = FreshetCore.SplitMix64(seed: 3)
        for t in 0..<4_000 {
            let item = ByteId("i\(random.nextInt(60))")
            let length = t % 50 == 0 ? 80 : random.nextInt(12)
            let history = (0..<length).map { _ in ByteId("i\(random.nextInt(300))") }
            let encoded = FreshetCore.ItemEvent.encodeHistory(history.map(\.string))
            let a = item.bytes.withUnsafeBytes { itemBytes in
                encoded.withUnsafeBytes { batched.observePositive(itemBytes: itemBytes, ts: Int64(t), encodedHistory: $0) }
            }
            let b = single.observePositive(item: item, history: history, ts: Int64(t))
            XCTAssertEqual(a != nil, b)
        }
        XCTAssertEqual(batched.entryCount, single.entryCount)
        for id in single.liveIds {
            XCTAssertEqual(batched.degree(of: id), single.degree(of: id))
            let rowA = (batched.row(of: id) ?? []).map { "\($0.0.string)=\($0.1)" }.sorted()
            let rowB = (single.row(of: id) ?? []).map { "\($0.0.string)=\($0.1)" }.sorted()
            XCTAssertEqual(rowA, rowB, "row of \(id.string)")
        }
    }

    func testEncodedRowEqualsTheCodec() throws {
        let rows = CooccurrenceRows(config: CooccurrenceConfig(dimension: 4))
        let row = rows.observePositive(itemBytes: UnsafeRawBufferPointer(start: nil, count: 0), ts: 0) { _ in }
        XCTAssertNotNil(row)
        rows.observePositive(item: ByteId("i"), history: [ByteId("a"), ByteId("é"), ByteId("b")], ts: 5)
        rows.observePositive(item: ByteId("i"), history: [ByteId("b")], ts: -3)
        for r in 0..<2 {
            let (id, bytes) = try XCTUnwrap(rows.encodedRow(Int32(r)))
            let expected = CooccurrenceSnapshot.encodeRow(degree: rows.degree(of: id), lastSeen: rows.lastSeen(of: id)!,
                                                          entries: rows.row(of: id)!)
            XCTAssertEqual(bytes, expected, id.string)
        }
        XCTAssertNil(rows.encodedRow(2))
        XCTAssertNil(rows.encodedRow(-1))
    }
}
