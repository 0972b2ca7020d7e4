import Foundation
import FreshetCore
import FreshetEmbeddings

/// Counts an item task's positives into its co-occurrence rows on a thread
/// of its own (Flink's asynchronous operators in spirit): the processing
/// thread copies each positive's item id and the user's history into a
/// buffer (a memcpy of ~100 bytes) instead of interning eleven ids and
/// updating a row, which was about a tenth of the processing thread with
/// embeddings on, and so on the features' critical path (issue 7: the
/// feature path must not wait on training).
///
/// Ownership, the one rule: while work is handed over and not yet counted,
/// only the counter's thread touches `book` (the rows and what changed in
/// them); the owner touches `book` only through `synced`, which first waits
/// until everything handed over has been counted. The lock makes the
/// thread's writes visible to the owner. Work is counted in the order handed
/// over, so the rows are exactly those of counting in place; a checkpoint, a
/// publication or a refresh snapshot reads them after a `synced`.
final class CooccurrenceCounter {
    /// What the counter's thread shares with the owner.
    private let shared: Shared
    /// Work not handed over yet (the owner's; no lock): commands, see `Command`.
    private var pending: [UInt8] = []
    private var pendingPositives = 0
    /// Positives handed over (the refresh cadence reads it without waiting).
    private(set) var positivesHandedOver = 0

    /// Hand work over once this many positives are pending: large enough
    /// that the lock is taken rarely, small enough to keep the thread busy.
    static let batchPositives = 256

    enum Command: UInt8 {
        /// `[ts: 8][item length: 4][item][history length: 4][history]`
        case positive = 1
        /// `[now: 8]`: evict rows expired by event time.
        case evict = 2
    }

    init(config: CooccurrenceConfig) {
        shared = Shared(book: CooccurrenceBook(rows: CooccurrenceRows(config: config)))
        pending.reserveCapacity(64 << 10)
        let shared = self.shared
        let thread = Thread { shared.run() }
        thread.name = "freshet-cooccur"
        thread.start()
    }

    /// The thread ends with its owner (work still pending is dropped with
    /// the task's state, which its next owner restores from the checkpoint).
    deinit { shared.stop() }

    /// The book once every positive and eviction handed over is counted:
    /// the owner's only way to the rows.
    var synced: CooccurrenceBook {
        flush()
        return shared.waitUntilCounted()
    }

    /// Hands one positive interaction over: `item` bytes, its event time and
    /// the user's history as it travels (`ItemEvent.userHistoryEncoded`).
    func observePositive(item: UnsafeRawBufferPointer, ts: Int64, history: UnsafeRawBufferPointer) {
        pending.append(Command.positive.rawValue)
        Self.append(UInt64(bitPattern: ts), to: &pending)
        Self.append(UInt32(item.count), to: &pending)
        pending.append(contentsOf: item.assumingMemoryBound(to: UInt8.self))
        Self.append(UInt32(history.count), to: &pending)
        pending.append(contentsOf: history.assumingMemoryBound(to: UInt8.self))
        pendingPositives += 1
        positivesHandedOver += 1
        if pendingPositives >= Self.batchPositives { flush() }
    }

    /// Hands an eviction of rows expired at event time `now` over (in order with the positives).
    func evictExpired(now: Int64) {
        pending.append(Command.evict.rawValue)
        Self.append(UInt64(bitPattern: now), to: &pending)
    }

    /// Hands the pending work to the thread.
    private func flush() {
        guard !pending.isEmpty else { return }
        shared.handOver(pending)
        pending.removeAll(keepingCapacity: true)
        pendingPositives = 0
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0.assumingMemoryBound(to: UInt8.self)) }
    }

    /// The thread's side. `book` is touched by the thread while `inbox` is
    /// not empty or `counting`, by the owner only after `waitUntilCounted`.
    private final class Shared: @unchecked Sendable {
        let book: CooccurrenceBook
        /// Guards `inbox`, `counting`, `stopping` and `exited`.
        private let condition = NSCondition()
        /// Work handed over, waiting for the thread.
        private var inbox: [UInt8] = []
        /// The thread's buffer while it counts (the thread's alone).
        private var working: [UInt8] = []
        private var counting = false
        private var stopping = false
        private var exited = false

        init(book: CooccurrenceBook) { self.book = book }

        func handOver(_ bytes: [UInt8]) {
            condition.lock()
            inbox.append(contentsOf: bytes)
            condition.signal()
            condition.unlock()
        }

        func waitUntilCounted() -> CooccurrenceBook {
            condition.lock()
            while (!inbox.isEmpty || counting) && !exited { condition.wait() }
            condition.unlock()
            return book
        }

        /// Ends the thread once it is idle and waits for it.
        func stop() {
            condition.lock()
            stopping = true
            condition.broadcast()
            while !exited { condition.wait() }
            condition.unlock()
        }

        func run() {
            while true {
                condition.lock()
                while inbox.isEmpty && !stopping { condition.wait() }
                if stopping {
                    exited = true
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                swap(&inbox, &working)
                counting = true
                condition.unlock()
                working.withUnsafeBytes { count($0) }
                working.removeAll(keepingCapacity: true)
                condition.lock()
                counting = false
                condition.broadcast()
                condition.unlock()
            }
        }

        /// Applies a buffer of commands to the book.
        private func count(_ bytes: UnsafeRawBufferPointer) {
            var at = 0
            func read<T: FixedWidthInteger>(_: T.Type) -> T {
                defer { at += MemoryLayout<T>.size }
                return T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
            }
            func slice(_ n: Int) -> UnsafeRawBufferPointer {
                defer { at += n }
                return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)])
            }
            while at < bytes.count {
                let command = bytes[at]
                at += 1
                if command == Command.positive.rawValue {
                    let ts = Int64(bitPattern: read(UInt64.self))
                    let item = slice(Int(read(UInt32.self)))
                    let history = slice(Int(read(UInt32.self)))
                    book.observePositive(item: item, ts: ts, history: history)
                } else {
                    book.evictExpired(now: Int64(bitPattern: read(UInt64.self)))
                }
            }
        }
    }
}

/// An item task's co-occurrence rows and what changed in them since the
/// last checkpoint and the last publication: one positive costs no hashing
/// (a per-row flag byte and a list of flagged rows). Used by one thread at a
/// time (`CooccurrenceCounter`'s ownership rule).
final class CooccurrenceBook {
    let rows: CooccurrenceRows
    /// Per row: bit 0 changed since the checkpoint, bit 1 since the publication.
    /// A row evicted before it is taken is skipped (`CooccurrenceRows.id(ofRow:)`
    /// is nil), unless an item was admitted into it since, which then had a
    /// positive and is flagged anyway.
    private var rowFlags: [UInt8] = []
    var changedRowsForCheckpoint: [Int32] = []
    var changedRowsForPublish: [Int32] = []
    static let checkpointFlag: UInt8 = 1
    static let publishFlag: UInt8 = 2
    /// Positives counted into rows (admitted items' only).
    private(set) var positives = 0
    /// Evicted rows whose fields must be deleted at the next publication.
    var evicted: [ByteId] = []
    /// Evicted rows still in the checkpoint hash.
    var evictedForCheckpoint: [ByteId] = []

    init(rows: CooccurrenceRows) { self.rows = rows }

    func observePositive(item: UnsafeRawBufferPointer, ts: Int64, history: UnsafeRawBufferPointer) {
        let row = rows.observePositive(itemBytes: item, ts: ts, encodedHistory: history)
        if let row { counted(row) }
    }

    func evictExpired(now: Int64) {
        let gone = rows.evictExpired(now: now)
        if !gone.isEmpty {
            evicted.append(contentsOf: gone)
            evictedForCheckpoint.append(contentsOf: gone)
        }
    }

    /// A positive counted into `row`: flags it for the checkpoint and the next publication.
    private func counted(_ row: Int32) {
        positives += 1
        let r = Int(row)
        if r >= rowFlags.count { rowFlags.append(contentsOf: repeatElement(0, count: r + 1 - rowFlags.count)) }
        let flags = rowFlags[r]
        if flags & Self.checkpointFlag == 0 { changedRowsForCheckpoint.append(row) }
        if flags & Self.publishFlag == 0 { changedRowsForPublish.append(row) }
        rowFlags[r] = flags | Self.checkpointFlag | Self.publishFlag
    }

    /// Takes the rows flagged for publication (clearing the flag): the ids of those still live.
    func takeChangedForPublish() -> [ByteId] {
        var ids: [ByteId] = []
        ids.reserveCapacity(changedRowsForPublish.count)
        for row in changedRowsForPublish {
            rowFlags[Int(row)] &= ~Self.publishFlag
            if let id = rows.id(ofRow: row) { ids.append(id) }
        }
        changedRowsForPublish.removeAll(keepingCapacity: true)
        return ids
    }

    /// Rows changed since the last call (the checkpoint's delta) as (item id,
    /// checkpoint row) pairs, encoded straight from the rows.
    func takeCheckpointRows() -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        out.reserveCapacity(changedRowsForCheckpoint.count)
        for row in changedRowsForCheckpoint {
            rowFlags[Int(row)] &= ~Self.checkpointFlag
            if let (id, bytes) = rows.encodedRow(row) { out.append((id.string, bytes)) }
        }
        changedRowsForCheckpoint.removeAll(keepingCapacity: true)
        return out
    }
}
