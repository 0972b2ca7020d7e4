/// The degree-normalised symmetric co-occurrence matrix of a snapshot, in CSR
/// form: A_ij = S_ij / (n_i n_j)^(1/4), S = (C + Cᵀ) / 2, over the items that
/// have a row, ordered by id bytes (so the matrix does not depend on which
/// task or instance contributed which row). Diagonal entries are zero.
public struct SymmetricSparseMatrix: Sendable {
    /// Items in row order (sorted by id bytes).
    public let items: [IdBytes]
    public let degrees: [Int64]
    public let rowStart: [Int]
    public let columns: [Int32]
    public let values: [Float]

    public var dimension: Int { items.count }

    public init(_ snapshot: CooccurrenceSnapshot) {
        // Rows sorted by id bytes; name index -> matrix row.
        let order = (0..<snapshot.rowCount).sorted { snapshot.names[Int(snapshot.rowItem[$0])] < snapshot.names[Int(snapshot.rowItem[$1])] }
        var rowOfName = [Int32](repeating: -1, count: snapshot.names.count)
        var items: [IdBytes] = []
        var degrees: [Int64] = []
        for (m, r) in order.enumerated() {
            rowOfName[Int(snapshot.rowItem[r])] = Int32(m)
            items.append(snapshot.names[Int(snapshot.rowItem[r])])
            degrees.append(max(1, snapshot.rowDegree[r]))
        }
        let n = items.count
        // Both halves of each entry, as (row, column, count / 2).
        var triples: [(Int32, Int32, Float)] = []
        triples.reserveCapacity(2 * snapshot.entryNeighbour.count)
        for (m, r) in order.enumerated() {
            for e in snapshot.rowStart[r]..<snapshot.rowStart[r + 1] {
                let j = rowOfName[Int(snapshot.entryNeighbour[e])]
                guard j >= 0, Int(j) != m else { continue }
                let half = Float(snapshot.entryCount[e]) / 2
                triples.append((Int32(m), j, half))
                triples.append((j, Int32(m), half))
            }
        }
        triples.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        let scale = degrees.map { Float(1 / Double($0).squareRoot().squareRoot()) }
        var rowStart = [Int](repeating: 0, count: n + 1)
        var columns: [Int32] = []
        var values: [Float] = []
        columns.reserveCapacity(triples.count)
        values.reserveCapacity(triples.count)
        var t = 0
        for i in 0..<n {
            while t < triples.count && Int(triples[t].0) == i {
                let j = triples[t].1
                var v: Float = 0
                while t < triples.count && Int(triples[t].0) == i && triples[t].1 == j { v += triples[t].2; t += 1 }
                columns.append(j)
                values.append(v * scale[i] * scale[Int(j)])
            }
            rowStart[i + 1] = columns.count
        }
        self.items = items
        self.degrees = degrees
        self.rowStart = rowStart
        self.columns = columns
        self.values = values
    }

    /// y = A x for a row-major n × k block (k floats a row).
    public func multiply(_ x: [Float], k: Int) -> [Float] {
        var y = [Float](repeating: 0, count: dimension * k)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                columns.withUnsafeBufferPointer { cp in
                    values.withUnsafeBufferPointer { vp in
                        for i in 0..<dimension {
                            let out = yp.baseAddress! + i * k
                            for e in rowStart[i]..<rowStart[i + 1] {
                                let a = vp[e]
                                let src = xp.baseAddress! + Int(cp[e]) * k
                                for c in 0..<k { out[c] += a * src[c] }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// The dense matrix (row-major n × n), for small n and tests.
    public func dense() -> [Float] {
        var a = [Float](repeating: 0, count: dimension * dimension)
        for i in 0..<dimension {
            for e in rowStart[i]..<rowStart[i + 1] { a[i * dimension + Int(columns[e])] = values[e] }
        }
        return a
    }
}
