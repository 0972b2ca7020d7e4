import FreshetCore
import FreshetEmbeddings
@testable import FreshetRuntime
import XCTest

/// `CooccurrenceCounter` counts on a thread of its own: what the owner reads
/// through `synced` must be exactly what counting in place gives, however the
/// work was cut into hand-overs, with evictions in their place among the
/// positives.
final class CooccurrenceCounterTests: XCTestCase {
    struct Positive {
        var item: String
        var ts: Int64
        var history: [String]
    }

    /// A skewed stream: popular items, users' histories of recent positives.
    func stream(count: Int, seed: UInt64) -> [Positive] {
        var random = SplitMix64(seed: seed)
        var histories: [[String]] = Array(repeating: [], count: 50)
        var out: [Positive] = []
        for n in 0..<count {
            let u = Int(random.next() % 50)
            let r = random.nextUnit()
            let item = "i\(Int(r * r * r * 400))"
            out.append(Positive(item: item, ts: Int64(n) * 1_000, history: histories[u]))
            histories[u] = Array(([item] + histories[u]).prefix(10))
        }
        return out
    }

    func config() -> CooccurrenceConfig {
        var config = CooccurrenceConfig(dimension: 8)
        config.rowCapacity = 20 // prunes often: pruning depends on order
        config.rowKeep = 10
        config.admitAfter = 2
        config.ttlMs = 400_000
        return config
    }

    func testCountingOnTheThreadEqualsCountingInPlace() {
        let positives = stream(count: 3 * CooccurrenceCounter.batchPositives + 77, seed: 7)
        let inPlace = CooccurrenceBook(rows: CooccurrenceRows(config: config()))
        let counter = CooccurrenceCounter(config: config())
        for (n, p) in positives.enumerated() {
            let history = ItemEvent(itemId: p.item, userId: "u", ts: p.ts, kind: .interaction(.click, dwellMs: nil),
                                    userHistory: p.history).userHistoryEncoded
            Array(p.item.utf8).withUnsafeBytes { item in
                history.withUnsafeBytes { h in
                    inPlace.observePositive(item: item, ts: p.ts, history: h)
                    counter.observePositive(item: item, ts: p.ts, history: h)
                }
            }
            if n % 97 == 96 {
                inPlace.evictExpired(now: p.ts)
                counter.evictExpired(now: p.ts)
            }
            if n == positives.count / 2 {
                // A checkpoint in the middle: both take the same delta.
                XCTAssertEqual(counter.synced.takeCheckpointRows().map(\.0), inPlace.takeCheckpointRows().map(\.0))
            }
        }
        XCTAssertEqual(counter.positivesHandedOver, positives.count)
        let book = counter.synced
        XCTAssertEqual(book.positives, inPlace.positives)
        XCTAssertGreaterThan(book.positives, positives.count / 2)
        XCTAssertEqual(book.rows.snapshot(), inPlace.rows.snapshot())
        XCTAssertEqual(book.evicted, inPlace.evicted)
        XCTAssertFalse(book.evicted.isEmpty, "the stream evicts rows")
        XCTAssertEqual(book.takeCheckpointRows().map(\.0), inPlace.takeCheckpointRows().map(\.0))
        XCTAssertEqual(book.takeChangedForPublish(), inPlace.takeChangedForPublish())
    }

    /// A counter dropped with work still pending (a revoked task) stops its
    /// thread without waiting for the work and without hanging.
    func testDroppingACounterWithPendingWorkEndsItsThread() {
        for _ in 0..<20 {
            let counter = CooccurrenceCounter(config: config())
            for p in stream(count: 2 * CooccurrenceCounter.batchPositives, seed: 3) {
                Array(p.item.utf8).withUnsafeBytes { counter.observePositive(item: $0, ts: p.ts, history: UnsafeRawBufferPointer(start: nil, count: 0)) }
            }
            _ = counter.positivesHandedOver
        }
    }
}
