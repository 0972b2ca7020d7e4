import Foundation

/// Rows of fixed-size entries, each row one block of memory of its own
/// (grown by doubling, like an array), kept behind one array of headers.
///
/// Why not `[[Entry]]`: every write to a nested array checks both arrays'
/// uniqueness and retains/releases the inner one's buffer; in the counting
/// of co-occurrences (one row scan and a few appends per positive) those
/// checks were ~18% of the counter thread's time (`perf record`, 3 M events,
/// twenty-fourth session). Here a row is a pointer, a count and a capacity.
///
/// Not thread-safe; one owner at a time (`CooccurrenceRows`'s rule).
/// `Entry` is bitwise copyable (no references): rows are moved with
/// `realloc` and freed without deinitialising.
final class EntryRowStore<Entry: BitwiseCopyable> {
    private struct Header {
        var start: UnsafeMutablePointer<Entry>?
        var count: Int32
        var capacity: Int32
    }

    @exclusivity(unchecked) private var headers: [Header] = []

    init() {}

    deinit {
        for h in headers { free(h.start) }
    }

    /// Adds an empty row at the end; returns its number (rows are numbered from 0 in the order added).
    @discardableResult
    func appendRow() -> Int {
        headers.append(Header(start: nil, count: 0, capacity: 0))
        return headers.count - 1
    }

    /// Entries of row `r`.
    @inline(__always)
    func count(_ r: Int) -> Int { Int(headers[r].count) }

    /// Empties row `r` and gives its memory back (an evicted or reused row).
    func clear(_ r: Int) {
        free(headers[r].start)
        headers[r] = Header(start: nil, count: 0, capacity: 0)
    }

    /// Row `r`'s entries, valid until the row next grows or is cleared.
    @inline(__always)
    func entries(_ r: Int) -> UnsafeMutableBufferPointer<Entry> {
        let h = headers[r]
        return UnsafeMutableBufferPointer(start: h.start, count: Int(h.count))
    }

    /// Appends `entry` to row `r`, doubling its block when full (first block: 4 entries).
    @inline(__always)
    func append(_ entry: Entry, to r: Int) {
        var h = headers[r]
        if h.count == h.capacity { h = grown(h) }
        guard let start = h.start else { preconditionFailure("a grown row has a block") }
        (start + Int(h.count)).initialize(to: entry)
        h.count += 1
        headers[r] = h
    }

    private func grown(_ h: Header) -> Header {
        let capacity = max(4, Int(h.capacity) * 2)
        guard let block = realloc(h.start, capacity * MemoryLayout<Entry>.stride) else {
            fatalError("EntryRowStore: out of memory growing a row to \(capacity) entries")
        }
        return Header(start: block.bindMemory(to: Entry.self, capacity: capacity),
                      count: h.count, capacity: Int32(capacity))
    }

    /// Replaces row `r` with `entries` (a restored row).
    func replace(_ r: Int, with entries: some Collection<Entry>) {
        clear(r)
        for e in entries { append(e, to: r) }
    }

    /// Removes the entries of row `r` for which `shouldRemove` is true,
    /// keeping the others in order. Returns how many went.
    @discardableResult
    func removeAll(in r: Int, where shouldRemove: (Entry) -> Bool) -> Int {
        let row = entries(r)
        var kept = 0
        for e in row where !shouldRemove(e) {
            row[kept] = e
            kept += 1
        }
        headers[r].count = Int32(kept)
        return row.count - kept
    }

    /// Bytes of the rows' blocks (capacity, not count) and the headers.
    var allocatedBytes: Int {
        headers.reduce(headers.capacity * MemoryLayout<Header>.stride) { $0 + Int($1.capacity) * MemoryLayout<Entry>.stride }
    }
}
