import Foundation
import FreshetCore

/// The co-occurrence rows of the items one task owns (one writer per row: the
/// item's owner). Per positive interaction (u, i) the owner of i adds 1 to
/// C[i][j] for each distinct j among u's most recent positive items before it
/// (the history the user stage attaches to the routed record), and 1 to i's
/// degree n_i. Integers only, so the counts do not depend on arrival order
/// (pruning does: docs/EMBEDDINGS.md, "Counting").
///
/// Rows are bounded: past `rowCapacity` entries a row is pruned to its
/// `rowKeep` largest counts (ties: the neighbour with the smaller id bytes
/// stays), which keeps memory at most `rowCapacity` entries a row. Admission
/// (frequency filter) and expiry by event time work as in Monolith's tables.
/// Not thread-safe: owned by one task (one thread at a time, never
/// reentrantly: the hot state skips dynamic exclusivity checks, which were
/// ~5% of the counting).
package final class CooccurrenceRows {
    /// One co-occurrence count: 8 bytes.
    struct Entry { var neighbour: UInt32; var count: UInt32 }

    package let config: CooccurrenceConfig
    private var index: [ByteId: Int32] = [:]
    private var ids: [ByteId] = []
    @exclusivity(unchecked) private var degrees: [Int64] = []
    @exclusivity(unchecked) private var lastSeen: [Int64] = []
    /// Each row's entries (a block per row; not `[[Entry]]`, see `EntryRowStore`).
    private let rows = EntryRowStore<Entry>()
    private var live: [Bool] = []
    private var free: [Int32] = []
    /// Neighbour ids interned to 32-bit numbers (entries stay 8 bytes). The
    /// index is keyed by a hash of the bytes, so a known neighbour is found
    /// from the routed record's bytes without allocating an id.
    @exclusivity(unchecked) private var neighbourSlots = KeyIndex()
    @exclusivity(unchecked) private var neighbourIds: [ByteId] = []
    /// The interned ids' bytes back to back (number n: `nameBytes[nameStart[n]..<nameStart[n + 1]]`),
    /// what a lookup compares with: one dense buffer instead of a heap array
    /// per id behind a pointer (interning the 10 history items of a positive
    /// was ~2.8 CPU-s per 3 M events, mostly cache misses on those arrays).
    @exclusivity(unchecked) private var nameBytes: [UInt8] = []
    @exclusivity(unchecked) private var nameStart: [Int] = [0]
    /// Interned number -> the row of that item (-1: none), and row -> its
    /// item's number: a routed positive finds its item's row from the
    /// record's bytes (no id allocation, no dictionary hash) and compares
    /// history items with the item by number.
    @exclusivity(unchecked) private var rowOfNumber: [Int32] = []
    private var numberOfRow: [UInt32] = []
    /// Sightings of items not admitted yet: (count, last seen).
    private var pending: [ByteId: (Int, Int64)] = [:]
    @exclusivity(unchecked) package private(set) var entryCount = 0

    package init(config: CooccurrenceConfig) { self.config = config }

    /// Live rows.
    package var count: Int { index.count }

    /// Folds one positive interaction in. `history` = the user's most recent
    /// positive items before this one, newest first (only the first
    /// `config.history` distinct ids other than `item` count).
    /// Returns true when the item has a row (admitted).
    @discardableResult
    package func observePositive(item: ByteId, history: [ByteId], ts: Int64) -> Bool {
        observePositive(item: item, ts: ts) { visit in
            for j in history { j.bytes.withUnsafeBytes { visit($0) } }
        }
    }

    /// The same, with the history given as a sequence of id byte buffers
    /// (`forEachHistoryItem` calls its argument once per item, newest first;
    /// the buffers are valid during each call): the processor's path, which
    /// reads ids straight from the routed record.
    @discardableResult
    package func observePositive(item: ByteId, ts: Int64,
                                forEachHistoryItem: ((UnsafeRawBufferPointer) -> Void) -> Void) -> Bool {
        item.bytes.withUnsafeBytes { observePositive(itemBytes: $0, ts: ts, forEachHistoryItem: forEachHistoryItem) } != nil
    }

    /// The same with the history as the routed record carries it
    /// (`ItemEvent.userHistoryEncoded`: a count, then each id, newest
    /// first): an item task's counter thread's path. Returns the item's row,
    /// nil when it is not admitted yet.
    ///
    /// The ids of one positive are interned as a batch: each one's bucket
    /// is asked of the cache first, then the name each bucket points to,
    /// so that their misses overlap instead of coming three per id one
    /// after another (interning was ~45% of the counting,
    /// `freshet bench embeddings --counting-only`). Counts exactly as
    /// `observePositive(itemBytes:ts:forEachHistoryItem:)` does.
    @discardableResult
    package func observePositive(itemBytes: UnsafeRawBufferPointer, ts: Int64,
                                encodedHistory: UnsafeRawBufferPointer) -> Int32? {
        withUnsafeTemporaryAllocation(of: UnsafeRawBufferPointer.self, capacity: Self.batchedHistory + 1) { ids in
            var n = 1
            ids[0] = itemBytes
            var complete = true
            ItemEvent.forEachHistoryItem(inEncoded: encodedHistory) { bytes in
                guard n < ids.count else { complete = false; return }
                ids[n] = bytes
                n += 1
            }
            // A history longer than any topology sends: counted one id at a time.
            guard complete else {
                return observePositive(itemBytes: itemBytes, ts: ts) { visit in
                    ItemEvent.forEachHistoryItem(inEncoded: encodedHistory, visit)
                }
            }
            return observePositive(UnsafeBufferPointer(rebasing: ids[0..<n]), ts: ts)
        }
    }

    /// Histories up to this long are interned as one batch (`history` is at most 64).
    static let batchedHistory = 64

    /// Computes each id's tag into `tags` and asks the cache for what its
    /// lookup will read: the bucket, then the name's start. A hint only (a
    /// bucket's tag may belong to another id).
    private func prefetchNames(_ ids: UnsafeBufferPointer<UnsafeRawBufferPointer>, tags: UnsafeMutableBufferPointer<UInt32>) {
        nameStart.withUnsafeBufferPointer { starts in
            neighbourSlots.prefetch(ids, tags: tags) { slot in
                Int(slot) + 1 < starts.count ? starts.baseAddress.map { UnsafeRawPointer($0 + Int(slot)) } : nil
            }
        }
    }

    /// The same with the item as bytes (read in place from the routed
    /// record). Returns the item's row, nil when it is not admitted yet.
    @discardableResult
    package func observePositive(itemBytes: UnsafeRawBufferPointer, ts: Int64,
                                forEachHistoryItem: ((UnsafeRawBufferPointer) -> Void) -> Void) -> Int32? {
        // The history's ids copied into one buffer first: `forEachHistoryItem`'s
        // buffers are valid during each call only, the batch needs them all.
        var names: [UInt8] = []
        var ends: [Int] = []
        forEachHistoryItem { bytes in
            names.append(contentsOf: bytes)
            ends.append(names.count)
        }
        return names.withUnsafeBytes { arena in
            withUnsafeTemporaryAllocation(of: UnsafeRawBufferPointer.self, capacity: ends.count + 1) { ids in
                ids[0] = itemBytes
                var start = 0
                for (k, end) in ends.enumerated() {
                    ids[k + 1] = UnsafeRawBufferPointer(rebasing: arena[start..<end])
                    start = end
                }
                return observePositive(UnsafeBufferPointer(ids), ts: ts)
            }
        }
    }

    /// Folds in one positive given as its ids: the item first, then the
    /// history, newest first (all valid for the call). Interns them as a batch.
    private func observePositive(_ ids: UnsafeBufferPointer<UnsafeRawBufferPointer>, ts: Int64) -> Int32? {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: ids.count) { tags in
            prefetchNames(ids, tags: tags)
            return count(ids, tags: UnsafeBufferPointer(tags), ts: ts)
        }
    }

    /// The counting itself: `ids[0]` the item, the rest its history, each with its tag.
    private func count(_ ids: UnsafeBufferPointer<UnsafeRawBufferPointer>, tags: UnsafeBufferPointer<UInt32>, ts: Int64) -> Int32? {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: ids.count) { found in
            lookUp(ids, tags: tags, into: found)
            return count(ids, tags: tags, found: UnsafeBufferPointer(found), ts: ts)
        }
    }

    /// Number of each of `ids` if interned already, `notInterned` if not:
    /// every lookup of a positive under one borrow of the index and the
    /// names (a borrow per id retained and released three buffers: ~5% of
    /// the counting, `perf record` of `freshet bench embeddings --counting-only`).
    private func lookUp(_ ids: UnsafeBufferPointer<UnsafeRawBufferPointer>, tags: UnsafeBufferPointer<UInt32>,
                        into found: UnsafeMutableBufferPointer<UInt32>) {
        let slots = neighbourSlots
        nameBytes.withUnsafeBytes { arena in
            nameStart.withUnsafeBufferPointer { starts in
                for k in ids.indices {
                    found[k] = slots.slot(tag: tags[k]) { slot in
                        IdBytes.equal(bytes: Self.name(slot, arena: arena, starts: starts), ids[k])
                    } ?? Self.notInterned
                }
            }
        }
    }

    /// `lookUp`'s mark of an id not interned yet (never a number: `KeyIndex` marks empty buckets with it).
    private static let notInterned = UInt32.max

    /// The counting with the ids looked up: an id not interned yet is
    /// interned when it counts (the item always; history items up to the
    /// limit), so repeats of a new id within the positive find its number.
    private func count(_ ids: UnsafeBufferPointer<UnsafeRawBufferPointer>, tags: UnsafeBufferPointer<UInt32>,
                       found: UnsafeBufferPointer<UInt32>, ts: Int64) -> Int32? {
        func number(_ k: Int) -> UInt32 {
            found[k] != Self.notInterned ? found[k] : intern(bytes: ids[k], tag: tags[k])
        }
        let itemBytes = ids[0]
        let itemNumber = number(0)
        let known = rowOfNumber[Int(itemNumber)]
        guard let row = known >= 0 ? known : admit(ByteId(bytes: Array(itemBytes)), number: itemNumber, ts: ts) else { return nil }
        let r = Int(row)
        degrees[r] += 1
        lastSeen[r] = max(lastSeen[r], ts)
        let limit = min(config.history, 64)
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: max(1, limit)) { seen in
            var used = 0
            for k in 1..<ids.count where used < limit {
                let n = number(k)
                guard n != itemNumber, !seen[0..<used].contains(n) else { continue }
                seen[used] = n
                used += 1
            }
            count(UnsafeBufferPointer(rebasing: seen[0..<used]), into: r)
        }
        if rows.count(r) > config.rowCapacity { prune(r) }
        return row
    }

    /// Adds 1 to row `r`'s entry of each of `neighbours` (distinct, at most
    /// 64), appending the missing ones in the order given. One pass over the
    /// row with a 64-bit filter of the neighbours' low bits, instead of one
    /// search of the row per neighbour (10 scans of up to 200 entries a
    /// positive were ~0.8 CPU-s per 3 M events).
    private func count(_ neighbours: UnsafeBufferPointer<UInt32>, into r: Int) {
        let used = neighbours.count
        guard used > 0 else { return }
        var filter: UInt64 = 0
        for n in neighbours { filter |= 1 &<< UInt64(n & 63) }
        let all: UInt64 = used == 64 ? .max : (1 &<< UInt64(used)) &- 1
        var found: UInt64 = 0
        let row = rows.entries(r)
        for e in row.indices {
            let nb = row[e].neighbour
            guard filter & (1 &<< UInt64(nb & 63)) != 0 else { continue }
            for k in 0..<used where neighbours[k] == nb {
                row[e].count &+= 1
                found |= 1 &<< UInt64(k)
                break
            }
            if found == all { break }
        }
        guard found != all else { return }
        for k in 0..<used where found & (1 &<< UInt64(k)) == 0 {
            rows.append(Entry(neighbour: neighbours[k], count: 1), to: r)
            entryCount += 1
        }
    }

    /// The row of `item` (interned as `number`), admitting it when it has
    /// been sighted `admitAfter` times; nil while pending.
    private func admit(_ item: ByteId, number: UInt32, ts: Int64) -> Int32? {
        if let row = index[item] { return row }
        var (sightings, _) = pending[item] ?? (0, ts)
        sightings += 1
        if sightings < config.admitAfter {
            pending[item] = (sightings, ts)
            return nil
        }
        pending[item] = nil
        let row: Int32
        if let reused = free.popLast() {
            row = reused
            ids[Int(row)] = item
            degrees[Int(row)] = 0
            lastSeen[Int(row)] = ts
            rows.clear(Int(row))
            live[Int(row)] = true
            numberOfRow[Int(row)] = number
        } else {
            row = Int32(ids.count)
            ids.append(item); degrees.append(0); lastSeen.append(ts); rows.appendRow(); live.append(true)
            numberOfRow.append(number)
        }
        index[item] = row
        rowOfNumber[Int(number)] = row
        return row
    }

    private func intern(_ id: ByteId) -> UInt32 {
        id.bytes.withUnsafeBytes { intern(bytes: $0) }
    }

    private func intern(bytes: UnsafeRawBufferPointer) -> UInt32 {
        intern(bytes: bytes, tag: KeyIndex.tag(bytes: bytes))
    }

    @inline(__always)
    private func intern(bytes: UnsafeRawBufferPointer, tag: UInt32) -> UInt32 {
        let next = UInt32(truncatingIfNeeded: neighbourIds.count)
        let n = lookUpOrInsert(bytes, tag, next)
        if n == next {
            neighbourIds.append(ByteId(bytes: Array(bytes)))
            nameBytes.append(contentsOf: bytes)
            nameStart.append(nameBytes.count)
            rowOfNumber.append(-1)
        }
        return n
    }

    /// Separate so the borrowed buffers are released before the caller appends (no copy).
    private func lookUpOrInsert(_ bytes: UnsafeRawBufferPointer, _ tag: UInt32, _ next: UInt32) -> UInt32 {
        nameBytes.withUnsafeBytes { arena in
            nameStart.withUnsafeBufferPointer { starts in
                neighbourSlots.slot(tag: tag, isKey: { slot in
                    IdBytes.equal(bytes: Self.name(slot, arena: arena, starts: starts), bytes)
                }, orInsert: { next })
            }
        }
    }

    /// Interned number `n`'s id bytes, from borrowed `nameBytes` (`arena`) and `nameStart` (`starts`).
    @inline(__always)
    private static func name(_ n: UInt32, arena: UnsafeRawBufferPointer, starts: UnsafeBufferPointer<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: arena[starts[Int(n)]..<starts[Int(n) + 1]])
    }

    /// `ByteId`'s order (lexicographic by bytes, a prefix first) by `memcmp`.
    @inline(__always)
    static func precedes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let n = min(a.count, b.count)
        if n > 0, let x = a.baseAddress, let y = b.baseAddress {
            let c = memcmp(x, y, n)
            if c != 0 { return c < 0 }
        }
        return a.count < b.count
    }

    /// Keeps the `rowKeep` entries with the largest counts, ties broken by
    /// the smaller neighbour id bytes: the same entries a sort by (count
    /// descending, id ascending) keeps, found by selection: the threshold
    /// count from a sort of the bare counts, then only the entries tied at
    /// the threshold are ordered by id (the full sort compared ids for most
    /// pairs: ~0.7 CPU-s per 3 M events). The kept entries stay in row order.
    private func prune(_ r: Int) {
        let keep = config.rowKeep
        let total = rows.count(r)
        guard total > keep else { return }
        let threshold: UInt32 = withUnsafeTemporaryAllocation(of: UInt32.self, capacity: total) { counts in
            let row = rows.entries(r)
            for k in 0..<total { counts[k] = row[k].count }
            return Self.largest(keep, of: counts)
        }
        var above = 0
        var tied: [UInt32] = []
        for e in rows.entries(r) {
            if e.count > threshold { above += 1 } else if e.count == threshold { tied.append(e.neighbour) }
        }
        let tiedKept = keep - above
        var keptTies = Set<UInt32>()
        if tiedKept < tied.count {
            // By the interned names' bytes in the arena (the ids' own arrays
            // cost a retain and a release per comparison).
            nameBytes.withUnsafeBytes { arena in
                nameStart.withUnsafeBufferPointer { starts in
                    tied.sort { Self.precedes(Self.name($0, arena: arena, starts: starts), Self.name($1, arena: arena, starts: starts)) }
                }
            }
            keptTies = Set(tied.prefix(tiedKept))
        } else {
            keptTies = Set(tied)
        }
        entryCount -= rows.removeAll(in: r) { e in e.count < threshold || (e.count == threshold && !keptTies.contains(e.neighbour)) }
    }

    /// The `k`-th largest value of `values` (1 ≤ k ≤ count), by selection:
    /// quickselect with a three-way partition (rows are mostly counts of 1
    /// and 2, so equal keys must not degrade it). Reorders `values`. The
    /// value is the one a descending sort puts at `k − 1`, whatever the pivots.
    static func largest(_ k: Int, of values: UnsafeMutableBufferPointer<UInt32>) -> UInt32 {
        precondition(k >= 1 && k <= values.count, "k out of range")
        let target = k - 1
        var lo = 0, hi = values.count - 1
        while lo < hi {
            let a = values[lo], b = values[(lo + hi) / 2], c = values[hi]
            let pivot = max(min(a, b), min(max(a, b), c)) // median of three
            // Descending: [lo, lt) > pivot, [lt, i) == pivot, (gt, hi] < pivot.
            var lt = lo, i = lo, gt = hi
            while i <= gt {
                if values[i] > pivot {
                    values.swapAt(lt, i)
                    lt += 1
                    i += 1
                } else if values[i] < pivot {
                    values.swapAt(i, gt)
                    gt -= 1
                } else {
                    i += 1
                }
            }
            if target < lt { hi = lt - 1 } else if target > gt { lo = gt + 1 } else { return pivot }
        }
        return values[lo]
    }

    /// Evicts rows with no positive for `ttlMs` of event time before `now`
    /// (and pending sightings as old). Returns the evicted ids.
    package func evictExpired(now: Int64) -> [ByteId] {
        guard config.ttlMs > 0 else { return [] }
        let cutoff = now - config.ttlMs
        var evicted: [ByteId] = []
        for r in 0..<ids.count where live[r] && lastSeen[r] < cutoff {
            evicted.append(ids[r])
            index[ids[r]] = nil
            rowOfNumber[Int(numberOfRow[r])] = -1
            entryCount -= rows.count(r)
            rows.clear(r)
            live[r] = false
            free.append(Int32(r))
        }
        pending = pending.filter { $0.value.1 >= cutoff }
        return evicted
    }

    /// The item of a live row (row numbers from `observePositive(itemBytes:...)`), nil when the row is free.
    package func id(ofRow row: Int32) -> ByteId? {
        let r = Int(row)
        return r >= 0 && r < ids.count && live[r] ? ids[r] : nil
    }

    /// The checkpoint form of a live row (`CooccurrenceSnapshot.encodeRow`,
    /// byte for byte), written straight from the row: no id array and no
    /// dictionary lookups. Nil when the row is free.
    package func encodedRow(_ row: Int32) -> (id: ByteId, bytes: [UInt8])? {
        let r = Int(row)
        guard r >= 0, r < ids.count, live[r] else { return nil }
        var out = ByteWriter(capacity: 16 + rows.count(r) * 12)
        out.write(byte: 1)
        out.write(varint: UInt64(max(0, degrees[r])))
        out.write(zigzag: lastSeen[r])
        out.write(varint: UInt64(rows.count(r)))
        for e in rows.entries(r) {
            // Not `write(bytes:)`: generic over the collection and not
            // inlinable, it runs unspecialised from this module (~0.8 CPU-s
            // per 3 M events of checkpoints in the profile).
            let name = neighbourIds[Int(e.neighbour)].bytes
            out.write(varint: UInt64(name.count))
            out.bytes.append(contentsOf: name)
            out.write(varint: UInt64(e.count))
        }
        return (ids[r], out.bytes)
    }

    /// Ids of every live row.
    package var liveIds: [ByteId] { (0..<ids.count).compactMap { live[$0] ? ids[$0] : nil } }

    /// Whether the item has a row (a lookup; `row(of:)` builds the row).
    package func hasRow(_ item: ByteId) -> Bool { index[item] != nil }

    /// Event time of the item's last positive (nil when it has no row).
    package func lastSeen(of item: ByteId) -> Int64? { index[item].map { lastSeen[Int($0)] } }

    /// Restores a row from a checkpoint (replacing any row of the item).
    package func restoreRow(item: ByteId, degree: Int64, lastSeen ts: Int64, entries: [(ByteId, UInt32)]) {
        pending[item] = nil
        let row: Int32
        if let existing = index[item] {
            row = existing
            entryCount -= rows.count(Int(row))
        } else {
            pending[item] = (max(0, config.admitAfter - 1), ts)
            guard let admitted = admit(item, number: intern(item), ts: ts) else { return }
            row = admitted
        }
        let r = Int(row)
        degrees[r] = degree
        lastSeen[r] = ts
        rows.replace(r, with: entries.map { Entry(neighbour: intern($0.0), count: $0.1) })
        entryCount += rows.count(r)
    }

    /// The degree of an item (0 when it has no row).
    package func degree(of item: ByteId) -> Int64 { index[item].map { degrees[Int($0)] } ?? 0 }

    /// The row of an item: (neighbour, count) pairs in no particular order.
    package func row(of item: ByteId) -> [(ByteId, UInt32)]? {
        guard let r = index[item] else { return nil }
        return rows.entries(Int(r)).map { (neighbourIds[Int($0.neighbour)], $0.count) }
    }

    /// Calls `body(neighbour number, count)` for each entry of the item's
    /// row, in `row(of:)`'s order, without building ids; false when the item
    /// has no row. Numbers name ids through `internedId(_:)`.
    @discardableResult
    package func forEachEntry(of item: ByteId, _ body: (_ neighbour: UInt32, _ count: UInt32) -> Void) -> Bool {
        guard let r = index[item] else { return false }
        for e in rows.entries(Int(r)) { body(e.neighbour, e.count) }
        return true
    }

    /// Ids interned so far: numbers `0..<internedCount` (a number never
    /// changes its id: interning only appends).
    package var internedCount: Int { neighbourIds.count }

    /// The id of an interned number.
    package func internedId(_ number: UInt32) -> ByteId { neighbourIds[Int(number)] }

    /// Every live row, for a refresh: plain array copies, no hashing (this runs
    /// on the processing thread; the refresher's thread does the rest). Names
    /// may repeat (an item as a row and as a neighbour); the matrix resolves them.
    package func snapshot() -> CooccurrenceSnapshot {
        var s = CooccurrenceSnapshot()
        s.names = neighbourIds
        s.names.reserveCapacity(neighbourIds.count + index.count)
        s.entryNeighbour.reserveCapacity(entryCount)
        s.entryCount.reserveCapacity(entryCount)
        for r in 0..<ids.count where live[r] {
            s.rowItem.append(Int32(s.names.count))
            s.names.append(ids[r])
            s.rowDegree.append(degrees[r])
            for e in rows.entries(r) {
                s.entryNeighbour.append(Int32(e.neighbour))
                s.entryCount.append(e.count)
            }
            s.rowStart.append(s.entryNeighbour.count)
        }
        return s
    }

    /// The rows of `only`, interned (tests, small subsets).
    package func snapshot(only: [ByteId]) -> CooccurrenceSnapshot {
        var builder = CooccurrenceSnapshot.Builder()
        func add(_ r: Int) {
            builder.addRow(item: ids[r], degree: degrees[r],
                           entries: rows.entries(r).lazy.map { (self.neighbourIds[Int($0.neighbour)], $0.count) })
        }
        for id in only { if let r = index[id] { add(Int(r)) } }
        return builder.snapshot
    }

    /// Approximate heap bytes: per row (id, degree, last seen, row header,
    /// dictionary entry), the entries' blocks as allocated (8 bytes an entry
    /// plus the blocks' spare capacity: `entryBytes`), and the interned ids.
    package static let bytesPerRow = 112
    package var approximateBytes: Int {
        count * Self.bytesPerRow + entryBytes + neighbourIds.count * 72 + nameBytes.count
    }

    /// Bytes the rows' entries occupy, spare capacity and row headers
    /// included (a walk over the rows: for summaries, not per event).
    package var entryBytes: Int { rows.allocatedBytes }
}
