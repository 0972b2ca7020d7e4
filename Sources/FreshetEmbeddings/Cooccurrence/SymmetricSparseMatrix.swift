import CPrefetch
import Dispatch

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
        // Per row: its halves summed per column in a dense accumulator, then
        // the columns in order. A column has at most two halves (one from
        // each of the two rows), and a sum of two floats does not depend on
        // their order, so this is the same sum whatever the bucket order.
        var sum = [Float](repeating: 0, count: n)
        var seenIn = [Int32](repeating: -1, count: n)
        var rowColumns: [Int32] = []
        for i in 0..<n {
            rowColumns.removeAll(keepingCapacity: true)
            for t in perRow[i]..<perRow[i + 1] {
                let j = Int(bucketColumn[t])
                if seenIn[j] == Int32(i) {
                    sum[j] += bucketValue[t]
                } else {
                    seenIn[j] = Int32(i)
                    sum[j] = bucketValue[t]
                    rowColumns.append(Int32(j))
                }
            }
            rowColumns.sort()
            for j in rowColumns {
                columns.append(j)
                values.append(sum[Int(j)] * scale[i] * scale[Int(j)])
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
    ///
    /// Each output row is a sum over the row's entries in CSR order, so the
    /// result is bit-identical whatever `threads` is (rows are split between
    /// threads, never entries) and whichever kernel runs: k = 64 (the
    /// default dimension) keeps the output row in SIMD registers (four
    /// SIMD16 accumulators, the same multiply then add per coordinate as the
    /// scalar loop: no fused multiply-add), other k use the scalar loop.
    /// - Parameter threads: rows are split into this many parts of about
    ///   equal non-zeros, run concurrently (the final refresh of a bounded
    ///   run, when the processing thread waits for it); 1 on the caller's thread.
    package func multiply(_ x: [Float], k: Int, threads: Int = 1) -> [Float] {
        let n = dimension
        var y = [Float](repeating: 0, count: n * k)
        guard n > 0, k > 0 else { return y }
        let parts = max(1, min(threads, n / 1024 + 1))
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                columns.withUnsafeBufferPointer { cp in
                    values.withUnsafeBufferPointer { vp in
                        rowStart.withUnsafeBufferPointer { rp in
                            let kernel = Kernel(x: xp.baseAddress!, y: yp.baseAddress!, columns: cp.baseAddress,
                                                values: vp.baseAddress, rowStart: rp.baseAddress!, k: k)
                            if parts == 1 {
                                kernel.run(0..<n)
                            } else {
                                let bounds = Self.split(rowStart: rp, rows: n, parts: parts)
                                DispatchQueue.concurrentPerform(iterations: parts) { p in
                                    kernel.run(bounds[p]..<bounds[p + 1])
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// Row boundaries of `parts` ranges with about equal non-zeros.
    static func split(rowStart: UnsafeBufferPointer<Int>, rows n: Int, parts: Int) -> [Int] {
        var bounds = [0]
        let total = rowStart[n]
        var row = 0
        for p in 1..<parts {
            let target = total / parts * p
            while row < n && rowStart[row] < target { row += 1 }
            bounds.append(max(bounds[p - 1], row))
        }
        bounds.append(n)
        return bounds
    }

    /// The product over a range of rows (pointers valid during `multiply`;
    /// ranges of different calls write disjoint rows of `y`).
    private struct Kernel: @unchecked Sendable {
        let x: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
        let columns: UnsafePointer<Int32>?
        let values: UnsafePointer<Float>?
        let rowStart: UnsafePointer<Int>
        let k: Int

        /// Entries between the one summed and the one whose `x` row is asked for
        /// (4, 8 and 16 measured: 16 best).
        static let prefetchAhead = 16

        func run(_ rows: Range<Int>) {
            guard let columns, let values else { return }
            if k == 64 {
                let raw = UnsafeRawPointer(x)
                // The rows of `x` an entry reads are all over the block (a
                // neighbour's row, 256 bytes): ask for the one `prefetchAhead`
                // entries on while this one is summed, so the misses overlap
                // (`freshet bench refresh`, 47 k items: ~12% off a refresh).
                let end = rowStart[rows.upperBound]
                for i in rows {
                    var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                    for e in rowStart[i]..<rowStart[i + 1] {
                        if e &+ Self.prefetchAhead < end {
                            let next = raw + Int(columns[e &+ Self.prefetchAhead]) * 256
                            freshet_prefetch(next)
                            freshet_prefetch(next + 64)
                            freshet_prefetch(next + 128)
                            freshet_prefetch(next + 192)
                        }
                        let a = SIMD16<Float>(repeating: values[e])
                        let src = raw + Int(columns[e]) * 256
                        a0 += a * src.loadUnaligned(as: SIMD16<Float>.self)
                        a1 += a * src.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
                        a2 += a * src.loadUnaligned(fromByteOffset: 128, as: SIMD16<Float>.self)
                        a3 += a * src.loadUnaligned(fromByteOffset: 192, as: SIMD16<Float>.self)
                    }
                    let out = UnsafeMutableRawPointer(y + i * 64)
                    out.storeBytes(of: a0, as: SIMD16<Float>.self)
                    out.storeBytes(of: a1, toByteOffset: 64, as: SIMD16<Float>.self)
                    out.storeBytes(of: a2, toByteOffset: 128, as: SIMD16<Float>.self)
                    out.storeBytes(of: a3, toByteOffset: 192, as: SIMD16<Float>.self)
                }
                return
            }
            for i in rows {
                let out = y + i * k
                for e in rowStart[i]..<rowStart[i + 1] {
                    let a = values[e]
                    let src = x + Int(columns[e]) * k
                    for c in 0..<k { out[c] += a * src[c] }
                }
            }
        }
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
