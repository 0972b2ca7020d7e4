import FreshetCore

/// Co-occurrence rows as a refresh reads them: the union of every task's
/// rows, in one compact form (names interned once; entries as index + count).
///
/// `rows[r]` = (item name index, degree, entries range); entries point into
/// `names`. Neighbours without a row of their own are dropped by the refresh.
/// Snapshots from several tasks (or instances) merge with `merged(_:)`; a
/// merge is independent of the order of its inputs because the refresh sorts
/// items by id bytes.
package struct CooccurrenceSnapshot: Sendable, Equatable {
    package var names: [ByteId] = []
    package var rowItem: [Int32] = []
    package var rowDegree: [Int64] = []
    package var rowStart: [Int] = [0]
    package var entryNeighbour: [Int32] = []
    package var entryCount: [UInt32] = []

    package init() {}

    package var rowCount: Int { rowItem.count }

    /// Builds a snapshot row by row, interning names.
    package struct Builder {
        package private(set) var snapshot = CooccurrenceSnapshot()
        private var nameIndex: [ByteId: Int32] = [:]
        package init() {}

        mutating func name(_ id: ByteId) -> Int32 {
            if let n = nameIndex[id] { return n }
            let n = Int32(snapshot.names.count)
            snapshot.names.append(id)
            nameIndex[id] = n
            return n
        }

        package mutating func addRow<S: Sequence>(item: ByteId, degree: Int64, entries: S) where S.Element == (ByteId, UInt32) {
            snapshot.rowItem.append(name(item))
            snapshot.rowDegree.append(degree)
            for (neighbour, count) in entries {
                snapshot.entryNeighbour.append(name(neighbour))
                snapshot.entryCount.append(count)
            }
            snapshot.rowStart.append(snapshot.entryNeighbour.count)
        }
    }

    /// Calls `body(item, degree, entries)` for every row.
    package func forEachRow(_ body: (ByteId, Int64, [(ByteId, UInt32)]) -> Void) {
        for r in 0..<rowCount {
            let entries = (rowStart[r]..<rowStart[r + 1]).map { (names[Int(entryNeighbour[$0])], entryCount[$0]) }
            body(names[Int(rowItem[r])], rowDegree[r], entries)
        }
    }

    /// The union of several snapshots, by concatenation (names are not
    /// deduplicated; the matrix resolves names by id bytes). With one owner per
    /// item no item has two rows; if one did, the matrix keeps the first.
    package static func merged(_ parts: [CooccurrenceSnapshot]) -> CooccurrenceSnapshot {
        guard parts.count > 1 else { return parts.first ?? CooccurrenceSnapshot() }
        var s = CooccurrenceSnapshot()
        for part in parts {
            let base = Int32(s.names.count)
            let entryBase = s.entryNeighbour.count
            s.names.append(contentsOf: part.names)
            s.rowItem.append(contentsOf: part.rowItem.lazy.map { $0 + base })
            s.rowDegree.append(contentsOf: part.rowDegree)
            s.rowStart.append(contentsOf: part.rowStart.dropFirst().lazy.map { $0 + entryBase })
            s.entryNeighbour.append(contentsOf: part.entryNeighbour.lazy.map { $0 + base })
            s.entryCount.append(contentsOf: part.entryCount)
        }
        return s
    }

    /// Binary form for Redis (one value a row): version byte 1, degree varint,
    /// last-seen event time (zigzag varint), entry count varint, then per entry
    /// (neighbour length varint, bytes, count varint).
    package static func encodeRow(degree: Int64, lastSeen: Int64, entries: [(ByteId, UInt32)]) -> [UInt8] {
        var out = ByteWriter(capacity: 16 + entries.count * 12)
        out.write(byte: 1)
        out.write(varint: UInt64(max(0, degree)))
        out.write(zigzag: lastSeen)
        out.write(varint: UInt64(entries.count))
        for (neighbour, count) in entries {
            out.write(bytes: neighbour.bytes)
            out.write(varint: UInt64(count))
        }
        return out.bytes
    }

    /// Inverse of `encodeRow`. Throws `CodecError` on truncated or unknown input.
    package static func decodeRow(_ bytes: [UInt8]) throws(CodecError) -> (degree: Int64, lastSeen: Int64, entries: [(ByteId, UInt32)]) {
        var r = ByteReader(bytes)
        let version = try r.readByte("co-occurrence row version")
        guard version == 1 else { throw CodecError(.unknownVersion, "co-occurrence row format \(version)") }
        let degree = Int64(clamping: try r.readVarint("co-occurrence row degree"))
        let lastSeen = try r.readZigzag("co-occurrence row last seen")
        let n = Int(clamping: try r.readVarint("co-occurrence row entry count"))
        guard n <= r.remaining else { throw CodecError(.invalidValue, "co-occurrence row claims \(n) entries") }
        var entries: [(ByteId, UInt32)] = []
        entries.reserveCapacity(n)
        for _ in 0..<n {
            let id = ByteId(bytes: Array(try r.readBytes("co-occurrence neighbour id")))
            entries.append((id, UInt32(clamping: try r.readVarint("co-occurrence count"))))
        }
        return (degree, lastSeen, entries)
    }

    package static func == (a: CooccurrenceSnapshot, b: CooccurrenceSnapshot) -> Bool {
        a.names == b.names && a.rowItem == b.rowItem && a.rowDegree == b.rowDegree && a.rowStart == b.rowStart
            && a.entryNeighbour == b.entryNeighbour && a.entryCount == b.entryCount
    }
}
