/// The degree-normalised symmetric co-occurrence matrix of a snapshot, in CSR
/// form: A_ij = S_ij / (n_i n_j)^(1/4), S = (C + Cᵀ) / 2, over the items that
/// have a row, ordered by id bytes (so the matrix does not depend on which
/// task or instance contributed which row). Diagonal entries are zero.
package struct SymmetricSparseMatrix: Sendable {
    /// Items in row order (sorted by id bytes).
    package let items: [ByteId]
    package let degrees: [Int64]
    package let rowStart: [Int]
    package let columns: [Int32]
    package let values: [Float]

    package var dimension: Int { items.count }

    package init(_ snapshot: CooccurrenceSnapshot) {
        // Rows sorted by id bytes (an item with two rows keeps the first);
        // name index -> matrix row, by id bytes (names may repeat).
        var sorted = (0..<snapshot.rowCount).sorted {
            let a = snapshot.names[Int(snapshot.rowItem[$0])], b = snapshot.names[Int(snapshot.rowItem[$1])]
            return a != b ? a < b : $0 < $1
        }
        var kept: [Int] = []
        kept.reserveCapacity(sorted.count)
        for r in sorted where kept.last.map({ snapshot.names[Int(snapshot.rowItem[$0])] != snapshot.names[Int(snapshot.rowItem[r])] }) ?? true {
            kept.append(r)
        }
        sorted = kept
        let order = sorted
        var rowById: [ByteId: Int32] = [:]
        rowById.reserveCapacity(order.count)
        var items: [ByteId] = []
        var degrees: [Int64] = []
        for (m, r) in order.enumerated() {
            let id = snapshot.names[Int(snapshot.rowItem[r])]
            rowById[id] = Int32(m)
            items.append(id)
            degrees.append(max(1, snapshot.rowDegree[r]))
        }
        let rowOfName = snapshot.names.map { rowById[$0] ?? -1 }
        let n = items.count
        // Both halves of each entry (i, j, count / 2), bucketed by row (counting
        // sort), then each row sorted by column and duplicates summed.
        var perRow = [Int](repeating: 0, count: n + 1)
        for (m, r) in order.enumerated() {
            for e in snapshot.rowStart[r]..<snapshot.rowStart[r + 1] {
                let j = rowOfName[Int(snapshot.entryNeighbour[e])]
                guard j >= 0, Int(j) != m else { continue }
                perRow[m + 1] += 1
                perRow[Int(j) + 1] += 1
            }
        }
        for i in 0..<n { perRow[i + 1] += perRow[i] }
        var fill = perRow
        var bucketColumn = [Int32](repeating: 0, count: perRow[n])
        var bucketValue = [Float](repeating: 0, count: perRow[n])
        for (m, r) in order.enumerated() {
            for e in snapshot.rowStart[r]..<snapshot.rowStart[r + 1] {
                let j = rowOfName[Int(snapshot.entryNeighbour[e])]
                guard j >= 0, Int(j) != m else { continue }
                let half = Float(snapshot.entryCount[e]) / 2
                bucketColumn[fill[m]] = j; bucketValue[fill[m]] = half; fill[m] += 1
                bucketColumn[fill[Int(j)]] = Int32(m); bucketValue[fill[Int(j)]] = half; fill[Int(j)] += 1
            }
        }
        let scale = degrees.map { Float(1 / Double($0).squareRoot().squareRoot()) }
        var rowStart = [Int](repeating: 0, count: n + 1)
        var columns: [Int32] = []
        var values: [Float] = []
        columns.reserveCapacity(perRow[n])
        values.reserveCapacity(perRow[n])
        var pairs: [(Int32, Float)] = []
        for i in 0..<n {
            pairs.removeAll(keepingCapacity: true)
            for t in perRow[i]..<perRow[i + 1] { pairs.append((bucketColumn[t], bucketValue[t])) }
            // Sorted by column, then value: the sum of a column's (at most two)
            // halves is then independent of bucket order.
            pairs.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            var t = 0
            while t < pairs.count {
                let j = pairs[t].0
                var v: Float = 0
                while t < pairs.count && pairs[t].0 == j { v += pairs[t].1; t += 1 }
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
    package func multiply(_ x: [Float], k: Int) -> [Float] {
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
    package func dense() -> [Float] {
        var a = [Float](repeating: 0, count: dimension * dimension)
        for i in 0..<dimension {
            for e in rowStart[i]..<rowStart[i + 1] { a[i * dimension + Int(columns[e])] = values[e] }
        }
        return a
    }
}
