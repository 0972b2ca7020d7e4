import CLinearAlgebra

/// Batch factorisations fit once, offline, on every positive before the
/// session protocol's cut: the references issue 7 measures the streaming
/// vectors against ("better than batch factorization"). Both read the binary
/// user × item matrix X (X_ui = 1 when u had a positive on i before the cut)
/// through its item Gram matrix G = XᵀX (n × n, dense), and both score a
/// session the way serving scores one, from the user's last positives only:
///
/// - **PureSVD** (Cremonesi, Koren and Turrin, "Performance of Recommender
///   Algorithms on Top-N Recommendation Tasks", RecSys 2010): the item
///   factors Q (n × k) are the top k right singular vectors of X, i.e. the
///   eigenvectors of G with the k largest eigenvalues; an item's vector is
///   its row of Q, and a session is the mean of its items' rows, exactly as
///   the published vectors are used.
/// - **EASE** (Steck, "Embarrassingly Shallow Autoencoders for Sparse
///   Data", WWW 2019): B = I − P·diag(1 / diag P) with P = (G + λI)⁻¹, so
///   B_ij = −P_ij / P_jj off the diagonal and B_jj = 0; a session's score of
///   item j is Σ_h B_hj over its items h. Not a vector model (n × n), the
///   strongest simple batch baseline of the study.
///
/// Items are numbered `0..<itemCount` by the caller; only the items with a
/// positive before the cut take part (`isFitted(j)`): the others have no
/// vector and no score, like an item the frozen streaming vectors never saw.
/// The two fits are independent: one failing (EASE with too small a λ)
/// leaves the other (`failures` says why).
package struct BatchReferences: Sendable {
    /// Items, numbered by the caller.
    package let itemCount: Int
    /// The fitted items, in order: row m of the matrices below is item `fittedItems[m]`.
    package let fittedItems: [Int]
    /// Item j's row of the matrices below, -1 when it had no positive before the cut.
    package let rowOfItem: [Int]
    /// PureSVD's item factors, `fittedItems.count` × `dimension`, row-major (nil: the fit failed).
    package let pureSVDVectors: [Float]?
    /// PureSVD's k: the requested dimension, at most the fitted items.
    package let dimension: Int
    /// EASE's weights B, row-major over the fitted items (row h: what item h adds to every item's score; nil: the fit failed).
    package let easeWeights: [Float]?
    /// EASE's ridge λ.
    package let easeLambda: Double

    /// Whether item j had a positive before the cut (a vector and scores).
    package func isFitted(_ j: Int) -> Bool { j < itemCount && rowOfItem[j] >= 0 }
    /// Why a fit failed, one line each.
    package let failures: [String]

    /// Above this many fitted items the dense matrices are not built: the
    /// fits cost O(n³) on one thread (8,000 items: minutes) and 8n² bytes
    /// of doubles (0.5 GB); `fit` throws `tooManyItems`.
    package static let maxItems = 8_000

    package enum FitError: Error, Equatable, CustomStringConvertible {
        case tooManyItems(Int)

        package var description: String {
            switch self {
            case .tooManyItems(let n):
                "batch references skipped: \(n) items with a positive before the cut (dense n × n matrices, O(n³): at most \(BatchReferences.maxItems))"
            }
        }
    }

    /// Fits both references. `userItems`: each user's items with a positive
    /// before the cut (numbers `0..<itemCount`; repeats are counted once).
    /// - Parameters:
    ///   - dimension: PureSVD's k (capped at the number of fitted items).
    ///   - easeLambda: EASE's λ (> 0; its paper's grid: 100 to 5,000 for data sets of this order).
    /// - Throws: `FitError.tooManyItems` when more than `maxItems` items had a positive.
    package static func fit(userItems: [[Int]], itemCount: Int, dimension: Int, easeLambda: Double) throws(FitError) -> BatchReferences {
        var hasPositive = [Bool](repeating: false, count: itemCount)
        for items in userItems { for j in items { hasPositive[j] = true } }
        let fittedItems = hasPositive.indices.filter { hasPositive[$0] }
        let n = fittedItems.count
        guard n <= maxItems else { throw .tooManyItems(n) }
        var rowOf = [Int](repeating: -1, count: itemCount)
        for (m, j) in fittedItems.enumerated() { rowOf[j] = m }
        var gram = [Double](repeating: 0, count: n * n)
        for items in userItems {
            let rows = Set(items).map { rowOf[$0] }
            for a in rows { for b in rows { gram[a * n + b] += 1 } }
        }
        let k = min(dimension, n)
        var failures: [String] = []
        var vectors: [Float]?
        do { vectors = try pureSVD(gram: gram, n: n, k: k) } catch { failures.append("PureSVD failed: \(error)") }
        var weights: [Float]?
        do { weights = try ease(gram: gram, n: n, lambda: easeLambda) } catch {
            failures.append("EASE failed: \(error) (G + λI not positive definite in doubles: try a larger --ease-lambda)")
        }
        return BatchReferences(itemCount: itemCount, fittedItems: fittedItems, rowOfItem: rowOf, pureSVDVectors: vectors,
                               dimension: k, easeWeights: weights, easeLambda: easeLambda, failures: failures)
    }

    /// A LAPACK routine's failure.
    package struct LAPACKError: Error, CustomStringConvertible {
        package let routine: String
        package let info: Int32
        package var description: String { "LAPACK \(routine) returned \(info)" }
    }

    /// The eigenvectors of G with the k largest eigenvalues (`dsyevr`, a subset by index), n × k row-major.
    static func pureSVD(gram: [Double], n: Int, k: Int) throws(LAPACKError) -> [Float] {
        guard n > 0, k > 0 else { return [] }
        var a = gram
        var found: Int32 = 0
        var values = [Double](repeating: 0, count: n)
        var z = [Double](repeating: 0, count: n * k)
        var support = [Int32](repeating: 0, count: 2 * k)
        let info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "I")), CChar(UInt8(ascii: "U")),
                                  Int32(n), &a, Int32(n), 0, 0, Int32(n - k + 1), Int32(n), 0, &found, &values,
                                  &z, Int32(k), &support)
        guard info == 0, Int(found) == k else { throw LAPACKError(routine: "dsyevr", info: info != 0 ? info : -999) }
        return z.map { Float($0) }
    }

    /// EASE's B from G and λ (`dpotrf` + `dpotri`: G + λI is symmetric positive definite for λ > 0).
    static func ease(gram: [Double], n: Int, lambda: Double) throws(LAPACKError) -> [Float] {
        guard n > 0 else { return [] }
        var p = gram
        for i in 0..<n { p[i * n + i] += lambda }
        let upper = CChar(UInt8(ascii: "U"))
        var info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, upper, Int32(n), &p, Int32(n))
        guard info == 0 else { throw LAPACKError(routine: "dpotrf", info: info) }
        info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, upper, Int32(n), &p, Int32(n))
        guard info == 0 else { throw LAPACKError(routine: "dpotri", info: info) }
        // dpotri leaves the inverse in the upper triangle only.
        for i in 0..<n { for j in 0..<i { p[i * n + j] = p[j * n + i] } }
        var b = [Float](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n where j != i { b[i * n + j] = Float(-p[i * n + j] / p[j * n + j]) }
        }
        return b
    }

    /// PureSVD's session vector: the mean of the fitted items' rows (nil when none is fitted or the fit failed).
    package func pureSVDSession(_ items: [Int]) -> [Float]? {
        guard let pureSVDVectors else { return nil }
        let (sum, rows) = sumOfFittedRows(items, of: pureSVDVectors, width: dimension)
        return rows > 0 ? sum.map { $0 / Float(rows) } : nil
    }

    /// PureSVD's scores of items `0..<itemCount` for a session of `items`
    /// (the session vector's inner products; 0 for items not fitted; nil
    /// when no item of the session is fitted or the fit failed).
    package func pureSVDScores(_ items: [Int]) -> [Float]? {
        guard let pureSVDVectors, let q = pureSVDSession(items) else { return nil }
        var rowScores = [Float](repeating: 0, count: fittedItems.count)
        if !rowScores.isEmpty, dimension > 0 {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(fittedItems.count), Int32(dimension), 1, pureSVDVectors,
                        Int32(dimension), q, 1, 0, &rowScores, 1)
        }
        return scattered(rowScores)
    }

    /// EASE's scores of items `0..<itemCount` for a session of `items` (0 for
    /// items not fitted; nil when none of the session is fitted or the fit failed).
    package func easeScores(_ items: [Int]) -> [Float]? {
        guard let easeWeights else { return nil }
        let (sum, rows) = sumOfFittedRows(items, of: easeWeights, width: fittedItems.count)
        return rows > 0 ? scattered(sum) : nil
    }

    /// Per-fitted-row values spread to item numbers (0 elsewhere).
    private func scattered(_ rowValues: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: itemCount)
        for (m, j) in fittedItems.enumerated() { out[j] = rowValues[m] }
        return out
    }

    /// The sum of the rows of the fitted ones among `items` in a row-major
    /// matrix over the fitted items with `width` columns, and how many rows were summed.
    private func sumOfFittedRows(_ items: [Int], of matrix: [Float], width: Int) -> (sum: [Float], rows: Int) {
        var sum = [Float](repeating: 0, count: width)
        var rows = 0
        for h in items where h < itemCount && rowOfItem[h] >= 0 {
            let m = rowOfItem[h]
            for c in 0..<width { sum[c] += matrix[m * width + c] }
            rows += 1
        }
        return (sum, rows)
    }
}
