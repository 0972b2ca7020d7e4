import Foundation
import FreshetCore
import FreshetEmbeddings

/// Throughput of the co-occurrence counting an item task's counter thread
/// does (`CooccurrenceRows.observePositive` with each positive's history as
/// the routed record carries it), on one thread, on a synthetic stream of
/// positives: items by a power law mixed with each user's taste (a block of
/// 500 items), every positive with its user's last 10 positive items. The
/// stream is built first; only the counting is timed.
package enum CooccurrenceCountingBenchmark {
    package struct Report: Sendable, CustomStringConvertible {
        package var positives: Int
        package var items: Int
        package var users: Int
        package var seconds: Double
        package var rows: Int
        package var entries: Int

        package var description: String {
            String(format: "co-occurrence counting (one item task's counter, history 10): %d positives over %d items, %d users in %.3f s = %.0f positives/s on one core; %d rows, %d entries",
                   positives, items, users, seconds, Double(positives) / seconds, rows, entries)
        }
    }

    package static func run(positives: Int = 1_000_000, users: Int = 200_000, items: Int = 50_000,
                            seed: UInt64 = 17) -> Report {
        let config = CooccurrenceConfig()
        let stream = encodedStream(positives: positives, users: users, items: items, history: config.history, seed: seed)
        let rows = CooccurrenceRows(config: config)
        let clock = ContinuousClock()
        let start = clock.now
        stream.withUnsafeBytes { bytes in
            var r = BorrowedByteReader(bytes)
            var ts: Int64 = 0
            while !r.isAtEnd {
                guard let item = try? r.readBytes("item"), let history = try? r.readBytes("history") else { break }
                ts &+= 1
                rows.observePositive(itemBytes: item, ts: ts, encodedHistory: history)
            }
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return Report(positives: positives, items: items, users: users, seconds: seconds, rows: rows.count,
                      entries: rows.entryCount)
    }

    /// Positives as `[item: bytes][history: bytes]`, the history in the
    /// routed record's encoding (`ItemEvent.userHistoryEncoded`: a count,
    /// then each id, newest first).
    static func encodedStream(positives: Int, users: Int, items: Int, history: Int, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        let popularity = SyntheticZipf(count: items, exponent: 0.9)
        let ids = (0..<items).map { "item-\($0)" }
        var recent = [[Int32]](repeating: [], count: users)
        var out = ByteWriter(capacity: positives * 96)
        for _ in 0..<positives {
            let user = random.nextInt(users)
            let item: Int
            if random.nextUnit() < 0.5 {
                let block = (user * 7919) % max(1, items / 500)
                item = min(items - 1, block * 500 + random.nextInt(500))
            } else {
                item = popularity.rank(random.nextUnit())
            }
            out.write(string: ids[item])
            out.write(bytes: ItemEvent.encodeHistory(recent[user].reversed().map { ids[Int($0)] }))
            recent[user].append(Int32(item))
            if recent[user].count > history { recent[user].removeFirst() }
        }
        return out.bytes
    }
}
