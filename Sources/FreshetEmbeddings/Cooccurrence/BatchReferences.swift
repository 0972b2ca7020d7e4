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
/// Items are numbered `0..<n` by the caller; an item with no positive before
/// the cut has no vector and no score (`fitted[j]` false), like an item the
/// frozen streaming vectors never saw.
package struct BatchReferences: Sendable {
    /// Items, numbered by the caller.
    package let itemCount: Int
    /// Whether item j had a positive before the cut.
    package let fitted: [Bool]
    /// PureSVD's item factors, n × `dimension`, row-major.
    package let pureSVDVectors: [Float]
    package let dimension: Int
    /// EASE's weights B, n × n, row-major (row h: what item h adds to every item's score).
    package let easeWeights: [Float]
    /// EASE's ridge λ.
    package let easeLambda: Double

    /// Above this many items the dense n × n matrices (G in doubles for EASE,
    /// 8n² bytes: 1.15 GB at 12,000 items) are not built; `fit` returns nil.
    package static let maxItems = 12_000

    package enum FitError: Error, Equatable, CustomStringConvertible {
        case tooManyItems(Int)
        case lapack(routine: String, info: Int32)

        package var description: String {
            switch self {
            case .tooManyItems(let n):
                "batch references skipped: \(n) items before the cut (dense n × n matrices; at most \(BatchReferences.maxItems))"
            case .lapack(let routine, let info):
                "batch references failed: LAPACK \(routine) returned \(info)"
            }
        }
    }

    /// Fits both references. `userItems`: each user's items with a positive
    /// before the cut (numbers `0..<itemCount`; repeats are counted once).
    /// - Parameters:
    ///   - dimension: PureSVD's k (capped at the number of items).
    ///   - easeLambda: EASE's λ (its paper's grid: 100 to 5,000 for data sets of this order).
    /// - Throws: `FitError` when the matrices would be too large or LAPACK fails.
    package static func fit(userItems: [[Int]], itemCount n: Int, dimension: Int, easeLambda: Double) throws(FitError) -> BatchReferences {
        guard n <= maxItems else { throw .tooManyItems(n) }
        var gram = [Double](repeating: 0, count: n * n)
        var fitted = [Bool](repeating: false, count: n)
        for items in userItems {
            let distinct = Array(Set(items))
            for a in distinct {
                fitted[a] = true
                for b in distinct { gram[a * n + b] += 1 }
            }
        }
        let k = min(dimension, n)
        let vectors = try pureSVD(gram: gram, n: n, k: k)
        let weights = try ease(gram: gram, n: n, lambda: easeLambda)
        return BatchReferences(itemCount: n, fitted: fitted, pureSVDVectors: vectors, dimension: k,
                               easeWeights: weights, easeLambda: easeLambda)
    }

    /// The eigenvectors of G with the k largest eigenvalues (`dsyevr`, a subset by index), n × k row-major.
    static func pureSVD(gram: [Double], n: Int, k: Int) throws(FitError) -> [Float] {
        guard n > 0, k > 0 else { return [] }
        var a = gram
        var found: Int32 = 0
        var values = [Double](repeating: 0, count: n)
        var z = [Double](repeating: 0, count: n * k)
        var support = [Int32](repeating: 0, count: 2 * k)
        let info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "I")), CChar(UInt8(ascii: "U")),
                                  Int32(n), &a, Int32(n), 0, 0, Int32(n - k + 1), Int32(n), 0, &found, &values,
                                  &z, Int32(k), &support)
        guard info == 0, Int(found) == k else { throw .lapack(routine: "dsyevr", info: info != 0 ? info : -999) }
        return z.map { Float($0) }
    }

    /// EASE's B from G and λ (`dpotrf` + `dpotri`: G + λI is symmetric positive definite for λ > 0).
    static func ease(gram: [Double], n: Int, lambda: Double) throws(FitError) -> [Float] {
        guard n > 0 else { return [] }
        var p = gram
        for i in 0..<n { p[i * n + i] += lambda }
        let upper = CChar(UInt8(ascii: "U"))
        var info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, upper, Int32(n), &p, Int32(n))
        guard info == 0 else { throw .lapack(routine: "dpotrf", info: info) }
        info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, upper, Int32(n), &p, Int32(n))
        guard info == 0 else { throw .lapack(routine: "dpotri", info: info) }
        // dpotri leaves the inverse in the upper triangle only.
        for i in 0..<n { for j in 0..<i { p[i * n + j] = p[j * n + i] } }
        var b = [Float](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n where j != i { b[i * n + j] = Float(-p[i * n + j] / p[j * n + j]) }
        }
        return b
    }

    /// PureSVD's session vector: the mean of the fitted items' rows (nil when none is fitted).
    package func pureSVDSession(_ items: [Int]) -> [Float]? {
        let (sum, rows) = sumOfFittedRows(items, of: pureSVDVectors, width: dimension)
        return rows > 0 ? sum.map { $0 / Float(rows) } : nil
    }

    /// EASE's scores of items `0..<itemCount` for a session of `items` (nil when none is fitted).
    package func easeScores(_ items: [Int]) -> [Float]? {
        let (sum, rows) = sumOfFittedRows(items, of: easeWeights, width: itemCount)
        return rows > 0 ? sum : nil
    }

    /// The sum of the rows of the fitted ones among `items` in a row-major
    /// matrix with `width` columns, and how many rows were summed.
    private func sumOfFittedRows(_ items: [Int], of matrix: [Float], width: Int) -> (sum: [Float], rows: Int) {
        var sum = [Float](repeating: 0, count: width)
        var rows = 0
        for h in items where h < itemCount && fitted[h] {
            for c in 0..<width { sum[c] += matrix[h * width + c] }
            rows += 1
        }
        return (sum, rows)
    }
}
