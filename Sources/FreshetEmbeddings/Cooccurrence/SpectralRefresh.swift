import CLinearAlgebra
import Dispatch
import Foundation
import FreshetCore

/// Recomputes item vectors as the top eigenvectors of the degree-normalised
/// symmetric co-occurrence matrix (SymmetricSparseMatrix), scaled by
/// eigenvalue^(1/4), by subspace iteration with a Rayleigh–Ritz step:
///
///   Q ← orth(A Q) `iterations` times, then H = Qᵀ A Q (k × k), H = W Λ Wᵀ,
///   U = Q W, x_i = U_i · max(Λ, 0)^(1/4).
///
/// A Q is a sparse × dense product (O(nnz · k)); orthonormalisation is
/// Cholesky-QR (CBLAS ssyrk + LAPACKE spotrf + CBLAS strsm), one pass per
/// iteration and a second on the last (`orthonormalize`); the
/// small eigenproblem is LAPACKE ssyevd. Matrices of at most `denseLimit`
/// items are solved exactly with a dense ssyevd instead.
///
/// The start basis is the previous result's basis for items it has
/// (warm start), else a seeded Gaussian row (a function of (seed, id)), so
/// the result is a function of (snapshot, previous result) only: any
/// instance computing it gets the same vectors. Each column's sign is fixed
/// so that its largest-magnitude entry is positive (ties: lower row).
/// Pure computation, no shared state: safe to run on any thread.
package enum SpectralRefresh {
    package static let denseLimit = 512

    /// Threads of the final refresh of a bounded run (its sparse products,
    /// orthonormalisations and start block): the processing thread waits for
    /// that refresh, so its core is free; mid-run refreshes use one (the
    /// feature path has the other cores). The result does not depend on it.
    package static let finalThreads = max(1, min(2, ProcessInfo.processInfo.activeProcessorCount))

    /// OpenBLAS runs its kernels on one thread (process-wide): the refresh
    /// already has a thread of its own, and more would take the cores the
    /// feature path needs (and spin: OpenBLAS threads busy-wait between calls).
    package static func useOneBLASThread() {
        openblas_set_num_threads(1)
    }

    /// - Parameters:
    ///   - matrix: the matrix to factor.
    ///   - dimension: k, the published vector length.
    ///   - previous: the last result (warm start), or nil.
    ///   - iterations: subspace iterations (ignored on the dense path).
    ///   - version: the result's version (default: previous + 1).
    ///   - threads: threads for the sparse products (the result is the same
    ///     for any number: `SymmetricSparseMatrix.multiply`).
    /// - Returns: vectors for every item of `matrix`.
    package static func refresh(_ matrix: SymmetricSparseMatrix, dimension k: Int, previous: ItemVectorSet?,
                               iterations: Int, seed: UInt64, version: Int64? = nil, threads: Int = 1) -> ItemVectorSet {
        let n = matrix.dimension
        let version = version ?? ((previous?.version ?? 0) + 1)
        guard n > 0 else {
            return ItemVectorSet(version: version, dimension: k, items: [], vectors: [], basis: [], degrees: [],
                                 eigenvalues: [Float](repeating: 0, count: k))
        }
        let (basis, lambdas): ([Float], [Float])
        if n <= max(denseLimit, k) {
            (basis, lambdas) = denseTop(matrix, k: k)
        } else {
            (basis, lambdas) = subspace(matrix, k: k,
                                        start: startBasis(matrix, k: k, previous: previous, seed: seed, threads: threads),
                                        iterations: max(1, iterations), threads: threads)
        }
        let scale = lambdas.map { Float(Double(max(0, $0)).squareRoot().squareRoot()) }
        var vectors = basis
        for i in 0..<n {
            for c in 0..<k { vectors[i * k + c] *= scale[c] }
        }
        return ItemVectorSet(version: version, dimension: k, items: matrix.items, vectors: vectors, basis: basis,
                             degrees: matrix.degrees, eigenvalues: lambdas)
    }

    /// Exact top-k eigenpairs of a small matrix (dense ssyevd). Columns beyond n are zero.
    static func denseTop(_ matrix: SymmetricSparseMatrix, k: Int) -> ([Float], [Float]) {
        let n = matrix.dimension
        var a = matrix.dense()
        var w = [Float](repeating: 0, count: n)
        let info = LAPACKE_ssyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "U")),
                                  Int32(n), &a, Int32(n), &w)
        var basis = [Float](repeating: 0, count: n * k)
        var lambdas = [Float](repeating: 0, count: k)
        guard info == 0 else { return (basis, lambdas) }
        // ssyevd: ascending eigenvalues, eigenvectors in columns. Take the largest first.
        for c in 0..<min(k, n) {
            let src = n - 1 - c
            lambdas[c] = w[src]
            for i in 0..<n { basis[i * k + c] = a[i * n + src] }
        }
        fixSigns(&basis, n: n, k: k)
        return (basis, lambdas)
    }

    /// The start block: each item's previous basis row (warm start) plus a
    /// tiny seeded perturbation, or a seeded Gaussian row. A row depends only
    /// on (seed, id, previous), so the parts may run on any number of threads.
    static func startBasis(_ matrix: SymmetricSparseMatrix, k: Int, previous: ItemVectorSet?, seed: UInt64,
                           threads: Int = 1) -> [Float] {
        let n = matrix.dimension
        let previous = previous.flatMap { $0.dimension == k ? $0 : nil }
        let norm = Float(Double(n).squareRoot())
        var q = [Float](repeating: 0, count: n * k)
        q.withUnsafeMutableBufferPointer { out in
            let block = RowBlock(out)
            let bounds = rowParts(rows: n)
            runParts(bounds.count - 1, threads: threads) { p in
                for i in bounds[p]..<bounds[p + 1] {
                    let id = matrix.items[i]
                    let row = block.base + i * k
                    if let previous, let r = previous.rowOf[id] {
                        for c in 0..<k { row[c] = previous.basis[r * k + c] }
                        // A tiny seeded perturbation keeps columns independent when the previous basis was degenerate.
                    }
                    var rng = SplitMix64(seed: seed ^ id.stableHash)
                    for c in 0..<k {
                        let g = Float(rng.nextGaussian()) * (row[c] == 0 ? 1 : 1e-3)
                        row[c] += g / norm
                    }
                }
            }
        }
        return q
    }

    static func subspace(_ matrix: SymmetricSparseMatrix, k: Int, start: [Float], iterations: Int,
                         threads: Int = 1) -> ([Float], [Float]) {
        let n = matrix.dimension
        var q = start
        orthonormalize(&q, n: n, k: k, threads: threads, passes: 1)
        for iteration in 1...max(1, iterations) {
            q = matrix.multiply(q, k: k, threads: threads)
            // The iterations in between need a well-conditioned basis of the
            // right span, which one Cholesky-QR pass gives (its loss of
            // orthogonality, ~ε·cond², is undone by the next pass); the
            // Rayleigh–Ritz step needs orthonormal columns to working
            // precision: the second pass of CholeskyQR2, on the last only.
            orthonormalize(&q, n: n, k: k, threads: threads, passes: iteration >= iterations ? 2 : 1)
        }
        // Rayleigh–Ritz: H = Qᵀ A Q.
        let aq = matrix.multiply(q, k: k, threads: threads)
        var h = [Float](repeating: 0, count: k * k)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(k), Int32(n), 1, q, Int32(k), aq, Int32(k), 0, &h, Int32(k))
        for i in 0..<k { for j in (i + 1)..<max(i + 1, k) { let s = (h[i * k + j] + h[j * k + i]) / 2; h[i * k + j] = s; h[j * k + i] = s } }
        var w = [Float](repeating: 0, count: k)
        let info = LAPACKE_ssyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "U")), Int32(k), &h, Int32(k), &w)
        guard info == 0 else { return (q, [Float](repeating: 0, count: k)) }
        // Reorder eigenpairs largest first: W' columns reversed.
        var wr = [Float](repeating: 0, count: k * k)
        var lambdas = [Float](repeating: 0, count: k)
        for c in 0..<k {
            lambdas[c] = w[k - 1 - c]
            for r in 0..<k { wr[r * k + c] = h[r * k + (k - 1 - c)] }
        }
        var u = [Float](repeating: 0, count: n * k)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(k), Int32(k), 1, q, Int32(k), wr, Int32(k), 0, &u, Int32(k))
        fixSigns(&u, n: n, k: k)
        return (u, lambdas)
    }

    /// Orthonormal columns of a row-major n × k block (n >= k), by `passes`
    /// of Cholesky-QR: two (CholeskyQR2; Fukaya et al., "CholeskyQR2: a
    /// simple and communication-avoiding algorithm for computing a tall-skinny
    /// QR factorization", 2014) are orthonormal to working precision, one
    /// leaves an error of about ε·cond(y)². A column that collapses (rank
    /// deficiency) gets a small diagonal shift, so the result always has k
    /// columns.
    ///
    /// The rows are split into `rowParts(rows:)` parts (a function of n
    /// alone): the Gram matrix YᵀY is the sum of the parts' (added in part
    /// order) and each part is solved against the same factor. The parts run
    /// on up to `threads` threads; the result is the same for any `threads`.
    static func orthonormalize(_ y: inout [Float], n: Int, k: Int, threads: Int = 1, passes: Int = 2) {
        let bounds = rowParts(rows: n)
        let parts = bounds.count - 1
        for _ in 0..<passes {
            var partial = [Float](repeating: 0, count: parts * k * k)
            y.withUnsafeMutableBufferPointer { yp in
                partial.withUnsafeMutableBufferPointer { gp in
                    let block = RowBlock(yp), grams = RowBlock(gp)
                    runParts(parts, threads: threads) { p in
                        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(k), Int32(bounds[p + 1] - bounds[p]), 1,
                                    block.base + bounds[p] * k, Int32(k), 0, grams.base + p * k * k, Int32(k))
                    }
                }
            }
            var g = Array(partial[0..<(k * k)])
            for p in 1..<parts {
                for e in 0..<(k * k) { g[e] += partial[p * k * k + e] }
            }
            var trace: Float = 0
            for c in 0..<k { trace += g[c * k + c] }
            let shift = max(trace / Float(k), 1e-30) * 1e-6
            for c in 0..<k { g[c * k + c] += shift }
            let info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "U")), Int32(k), &g, Int32(k))
            guard info == 0 else { return }
            y.withUnsafeMutableBufferPointer { yp in
                g.withUnsafeMutableBufferPointer { rp in
                    let block = RowBlock(yp), factor = RowBlock(rp)
                    runParts(parts, threads: threads) { p in
                        cblas_strsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit,
                                    Int32(bounds[p + 1] - bounds[p]), Int32(k), 1,
                                    factor.base, Int32(k), block.base + bounds[p] * k, Int32(k))
                    }
                }
            }
        }
    }

    /// Rows per part below which a block is not split.
    static let rowsPerPart = 4_096

    /// Row boundaries of the parts a block's rows are split into: two of
    /// about equal size from `2 * rowsPerPart` rows (the final refresh runs
    /// on two threads), else one. A function of n alone, so every instance
    /// and every thread count sums the same parts.
    static func rowParts(rows n: Int) -> [Int] {
        let parts = n >= 2 * rowsPerPart ? 2 : 1
        return (0...parts).map { n * $0 / parts }
    }

    /// Runs `body` for each part, concurrently on up to `threads` threads.
    static func runParts(_ parts: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
        if parts <= 1 || threads <= 1 {
            for p in 0..<parts { body(p) }
        } else {
            DispatchQueue.concurrentPerform(iterations: parts, execute: body)
        }
    }

    /// A block's base pointer, shared by threads that touch disjoint rows (or only read).
    struct RowBlock: @unchecked Sendable {
        let base: UnsafeMutablePointer<Float>
        init(_ buffer: UnsafeMutableBufferPointer<Float>) { base = buffer.baseAddress! }
    }

    /// Makes each column's largest-magnitude entry positive (eigenvectors are
    /// defined up to sign; ties: the lower row decides). One pass over the
    /// rows, then one to flip.
    static func fixSigns(_ u: inout [Float], n: Int, k: Int) {
        var best = [Float](repeating: 0, count: k)
        var negative = [Bool](repeating: false, count: k)
        for i in 0..<n {
            for c in 0..<k {
                let v = u[i * k + c]
                if abs(v) > best[c] { best[c] = abs(v); negative[c] = v < 0 }
            }
        }
        guard negative.contains(true) else { return }
        let sign = negative.map { Float($0 ? -1 : 1) }
        for i in 0..<n {
            for c in 0..<k { u[i * k + c] *= sign[c] }
        }
    }
}
