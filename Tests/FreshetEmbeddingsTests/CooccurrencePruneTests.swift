import XCTest
@testable import FreshetEmbeddings

/// The row pruning by selection keeps exactly what the definition keeps (the
/// `rowKeep` largest counts, ties by the smaller id bytes), and the direct
/// checkpoint encoding equals the codec's.
final class CooccurrencePruneTests: XCTestCase {
    /// Seeded stream of positives on a few items with many neighbours and
    /// heavy ties (counts 1-3), ids of different lengths sharing prefixes.
    func testPruneKeepsTheLargestCountsWithTiesBrokenByIdBytes() {
        var config = CooccurrenceConfig(dimension: 4)
        config.rowCapacity = 30
        config.rowKeep = 12
        config.history = 10
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
