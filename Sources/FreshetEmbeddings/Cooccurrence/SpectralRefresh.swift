import CLinearAlgebra
import FreshetCore

/// Recomputes item vectors as the top eigenvectors of the degree-normalised
/// symmetric co-occurrence matrix (SymmetricSparseMatrix), scaled by
/// eigenvalue^(1/4), by subspace iteration with a Rayleigh–Ritz step:
///
///   Q ← orth(A Q) `iterations` times, then H = Qᵀ A Q (k × k), H = W Λ Wᵀ,
///   U = Q W, x_i = U_i · max(Λ, 0)^(1/4).
///
/// A Q is a sparse × dense product (O(nnz · k)); orthonormalisation is
/// Cholesky-QR done twice (CBLAS ssyrk + LAPACKE spotrf + CBLAS strsm); the
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
            (basis, lambdas) = subspace(matrix, k: k, start: startBasis(matrix, k: k, previous: previous, seed: seed),
                                        iterations: max(1, iterations), threads: threads)
        }
        var vectors = basis
        for c in 0..<k {
            let s = Float(Double(max(0, lambdas[c])).squareRoot().squareRoot())
            for i in 0..<n { vectors[i * k + c] *= s }
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

    static func startBasis(_ matrix: SymmetricSparseMatrix, k: Int, previous: ItemVectorSet?, seed: UInt64) -> [Float] {
        let n = matrix.dimension
        var q = [Float](repeating: 0, count: n * k)
        for i in 0..<n {
            let id = matrix.items[i]
            if let previous, previous.dimension == k, let r = previous.rowOf[id] {
                for c in 0..<k { q[i * k + c] = previous.basis[r * k + c] }
                // A tiny seeded perturbation keeps columns independent when the previous basis was degenerate.
            }
            var rng = SplitMix64(seed: seed ^ id.stableHash)
            for c in 0..<k {
                let g = Float(rng.nextGaussian()) * (q[i * k + c] == 0 ? 1 : 1e-3)
                q[i * k + c] += g / Float(Double(n).squareRoot())
            }
        }
        return q
    }

    static func subspace(_ matrix: SymmetricSparseMatrix, k: Int, start: [Float], iterations: Int,
                         threads: Int = 1) -> ([Float], [Float]) {
        let n = matrix.dimension
        var q = start
        orthonormalize(&q, n: n, k: k)
        for _ in 0..<iterations {
            q = matrix.multiply(q, k: k, threads: threads)
            orthonormalize(&q, n: n, k: k)
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

    /// Orthonormal columns of a row-major n × k block (n >= k), by Cholesky-QR
    /// twice. A column that collapses (rank deficiency) gets a small diagonal
    /// shift, so the result always has k columns.
    static func orthonormalize(_ y: inout [Float], n: Int, k: Int) {
        for _ in 0..<2 {
            var g = [Float](repeating: 0, count: k * k)
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(k), Int32(n), 1, y, Int32(k), 0, &g, Int32(k))
            var trace: Float = 0
            for c in 0..<k { trace += g[c * k + c] }
            let shift = max(trace / Float(k), 1e-30) * 1e-6
            for c in 0..<k { g[c * k + c] += shift }
            let info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "U")), Int32(k), &g, Int32(k))
            guard info == 0 else { return }
            cblas_strsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, Int32(n), Int32(k), 1, g, Int32(k), &y, Int32(k))
        }
    }

    /// Makes each column's largest-magnitude entry positive (eigenvectors are defined up to sign).
    static func fixSigns(_ u: inout [Float], n: Int, k: Int) {
        for c in 0..<k {
            var best: Float = 0
            var sign: Float = 1
            for i in 0..<n {
                let v = u[i * k + c]
                if abs(v) > best { best = abs(v); sign = v < 0 ? -1 : 1 }
            }
            if sign < 0 { for i in 0..<n { u[i * k + c] = -u[i * k + c] } }
        }
    }
}
