import FreshetCore
import FreshetEmbeddings
@testable import FreshetRuntime
import XCTest

/// Co-occurrence rows are pruned at capacity (200 entries, down to the 100
/// largest counts), and which entries survive depends on the order in which
/// different users' positives reach the item's task, that is on how the
/// source partitions interleave: two runs of one input, one instance or
/// several, can end with different rows and so different vectors. The
/// coordinates are no measure of that (a refresh's basis turns freely within
/// near-equal eigenvalues: coordinates moved by up to 0.48 while scores moved
/// by under 0.01 on a 40 k-event replay); what serving computes is. So the
/// stated tolerance is on retrieval quality: between interleavings of the
/// same per-partition logs, the planted precision of each item's 10 most
/// similar items (inner product, as the similar-items API ranks them) stays
/// within 5%, and the lists mostly agree (docs/EMBEDDINGS.md, "Counting").
final class PruningOrderTests: KeyedExamplesTestCase {
    /// Per source partition, in log order: users with several tastes (blocks
    /// of 60 items) and long sessions, so popular rows grow well past capacity.
    func logs() -> [TaskId: [[UInt8]]] {
        var rng = SplitMix64(seed: 21)
        var logs: [TaskId: [[UInt8]]] = [:]
        var t = base
        for _ in 0..<14_000 {
            t += Int64.random(in: 0..<2_000, using: &rng)
            let u = Int.random(in: 0..<120, using: &rng)
            let taste = (u + Int.random(in: 0..<2, using: &rng)) % 8
            // Power-law-ish within the taste: low ranks far more often.
            let rank = min(59, Int(Double(60) * pow(Double.random(in: 0..<1, using: &rng), 2.5)))
            // One pick in five from anywhere: popular rows meet most of the catalogue.
            let item = Int.random(in: 0..<5, using: &rng) == 0 ? "i\(Int.random(in: 0..<480, using: &rng))" : "i\(taste * 60 + rank)"
            let json = #"{"user_id":"u\#(u)","item_id":"\#(item)","action":"click","ts":\#(t)}"#
            logs[TaskId(stage: .interactions, partition: partition("u\(u)")), default: []].append(Array(json.utf8))
        }
        return logs
    }

    func vectors(_ logs: [TaskId: [[UInt8]]], schedule seed: UInt64?) -> (ItemVectorSet, entries: Int) {
        let d = TaskDriver(topology: Topology(), interactionPartitions: 2, impressionPartitions: 2, repartitionPartitions: 3,
                           nowMs: base + 48 * hour, itemEmbeddings: true, userEmbeddings: true)
        if let seed {
            d.sendInRandomOrder(logs, seed: seed, maxChunk: 40, maxRuns: 2)
        } else {
            // The reference reads each partition whole, in turn.
            for id in logs.keys.sorted(by: { $0.description < $1.description }) {
                for value in logs[id]! { d.send(id.stage, partition: id.partition, value) }
                d.runUntilQuiet()
            }
        }
        d.runUntilQuiet()
        var builder = CooccurrenceSnapshot.Builder()
        var entries = 0
        for case let item as ItemTask in d.tasks.values {
            guard let rows = item.embeddings?.rows else { continue }
            entries += rows.entryCount
            for id in rows.liveIds {
                builder.addRow(item: id, degree: rows.degree(of: id), entries: rows.row(of: id) ?? [])
            }
        }
        SpectralRefresh.useOneBLASThread()
        return (SpectralRefresh.refresh(SymmetricSparseMatrix(builder.snapshot), dimension: 16, previous: nil,
                                        iterations: 12, seed: 42), entries)
    }

    /// Each item's 10 nearest items by inner product.
    func neighbours(_ set: ItemVectorSet) -> [ByteId: Set<ByteId>] {
        let items = set.items
        let vectors = items.map { set.vector($0) ?? [] }
        var result: [ByteId: Set<ByteId>] = [:]
        for (a, va) in zip(items, vectors) {
            let scored = zip(items, vectors).filter { $0.0 != a }.map { b, vb in (b, zip(va, vb).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
            result[a] = Set(scored.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0.string < $1.0.string) }.prefix(10).map(\.0))
        }
        return result
    }

    /// The share of an item's 10 most similar items that a user who likes it
    /// also likes (its own taste block or an adjacent one: users hold two
    /// neighbouring tastes): the similar-items quality the input plants.
    func plantedPrecision(_ near: [ByteId: Set<ByteId>]) -> Double {
        func taste(_ id: ByteId) -> Int { (Int(id.string.dropFirst()) ?? 0) / 60 }
        let shares = near.map { item, top in
            Double(top.filter { abs(taste($0) - taste(item)) <= 1 || abs(taste($0) - taste(item)) == 7 }.count) / 10
        }
        return shares.reduce(0, +) / Double(max(1, shares.count))
    }

    func testSimilarItemsQualityIsTheSameInEveryInterleavingWhenRowsArePruned() throws {
        let logs = logs()
        let (reference, referenceEntries) = vectors(logs, schedule: nil)
        XCTAssertGreaterThan(reference.items.count, 400)
        XCTAssertGreaterThan(referenceEntries, 20_000, "rows hold co-occurrences")
        let expected = neighbours(reference)
        let referencePrecision = plantedPrecision(expected)
        XCTAssertGreaterThan(referencePrecision, 0.7, "the vectors carry the planted tastes")
        var differingRuns = 0
        for seed: UInt64 in 1...3 {
            let (set, entries) = vectors(logs, schedule: seed)
            if entries != referenceEntries { differingRuns += 1 }
            XCTAssertEqual(set.items.count, reference.items.count, "schedule \(seed): the same items have vectors")
            let got = neighbours(set)
            let overlaps = expected.map { item, near in Double((got[item] ?? []).intersection(near).count) / 10 }
            let overlap = overlaps.reduce(0, +) / Double(max(1, overlaps.count))
            let precision = plantedPrecision(got)
            print("pruning order: schedule \(seed): \(entries) entries (reference \(referenceEntries)), top-10 overlap \(overlap), planted precision \(precision) (reference \(referencePrecision))")
            // The tolerance: quality within 5% (the issue's bound between one
            // and three instances); the lists themselves mostly agree.
            XCTAssertEqual(precision, referencePrecision, accuracy: 0.05 * referencePrecision, "schedule \(seed)")
            XCTAssertGreaterThan(overlap, 0.75, "schedule \(seed): mean top-10 similar-items overlap")
        }
        // The premise: rows were pruned in an order-dependent way here.
        XCTAssertGreaterThan(differingRuns, 0, "some schedule ended with different rows")
    }
}
