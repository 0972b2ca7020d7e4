/// Item vectors as published: the result of a spectral refresh plus the items
/// folded in since. Immutable once built (a refresh or a fold-in makes a new
/// value), so it can be handed between threads and published atomically.
///
/// `vectors` is row-major (`dimension` floats an item). The published vector
/// of item i is xᵢ = uᵢ · diag(max(λ, 0))^(1/4), u the orthonormal basis;
/// `basis` keeps u for the next refresh's warm start.
package struct ItemVectorSet: Sendable {
    /// Refresh number (0: nothing refreshed yet); goes up by one a refresh.
    package let version: Int64
    package let dimension: Int
    package private(set) var items: [ByteId]
    package private(set) var rowOf: [ByteId: Int]
    package private(set) var vectors: [Float]
    package private(set) var basis: [Float]
    package private(set) var degrees: [Int64]
    /// Eigenvalues, largest first (`dimension` of them; 0 where the matrix had fewer items).
    package let eigenvalues: [Float]
    /// Items `0..<refreshed` came from the refresh; the rest were folded in since.
    package let refreshed: Int

    package static func empty(dimension: Int) -> ItemVectorSet {
        ItemVectorSet(version: 0, dimension: dimension, items: [], vectors: [], basis: [], degrees: [],
                      eigenvalues: [Float](repeating: 0, count: dimension))
    }

    init(version: Int64, dimension: Int, items: [ByteId], vectors: [Float], basis: [Float], degrees: [Int64], eigenvalues: [Float]) {
        self.version = version
        self.dimension = dimension
        self.items = items
        self.vectors = vectors
        self.basis = basis
        self.degrees = degrees
        self.eigenvalues = eigenvalues
        self.refreshed = items.count
        var rowOf: [ByteId: Int] = [:]
        rowOf.reserveCapacity(items.count)
        for (r, id) in items.enumerated() { rowOf[id] = r }
        self.rowOf = rowOf
    }

    package var count: Int { items.count }

    /// Whether the item's vector came from the refresh (not a fold-in since).
    package func isRefreshed(_ id: ByteId) -> Bool {
        guard let r = rowOf[id] else { return false }
        return r < refreshed
    }

    /// The published vector of an item, nil when it has none.
    package func vector(_ id: ByteId) -> [Float]? {
        guard let r = rowOf[id] else { return nil }
        return Array(vectors[(r * dimension)..<((r + 1) * dimension)])
    }

    /// The mean of the vectors of `ids` that have one (nil when none has):
    /// the session vector serving scores with, and the cold-start user vector.
    package func meanVector<S: Sequence>(_ ids: S) -> [Float]? where S.Element == ByteId {
        var sum = [Float](repeating: 0, count: dimension)
        var n = 0
        for id in ids {
            guard let r = rowOf[id] else { continue }
            let base = r * dimension
            for c in 0..<dimension { sum[c] += vectors[base + c] }
            n += 1
        }
        guard n > 0 else { return nil }
        let inv = 1 / Float(n)
        return sum.map { $0 * inv }
    }

    /// Like `foldIn`, but recomputes an item that was folded in before (not one from the refresh).
    @discardableResult
    package mutating func refold(_ id: ByteId, degree: Int64, row: [(ByteId, UInt32)]) -> [Float]? {
        if let r = rowOf[id] {
            guard r >= refreshed, let x = foldedVector(id, degree: degree, row: row) else { return vector(id) }
            for k in 0..<dimension {
                vectors[r * dimension + k] = x.0[k]
                basis[r * dimension + k] = x.1[k]
            }
            degrees[r] = max(1, degree)
            return x.0
        }
        return foldIn(id, degree: degree, row: row)
    }

    /// Folds a new item in from its own row and the current vectors, the
    /// eigenvector identity uᵢ = (1/λ) Σⱼ A_ij uⱼ applied to the published
    /// scale: x_ik = Σⱼ A_ij x_jk / λ_k (0 where λ_k <= 0), with
    /// A_ij = C_ij / (n_i n_j)^(1/4) (the item's own row standing in for the
    /// symmetric S_ij, which it approximates once both directions were seen).
    /// Returns the vector, or nil when no neighbour has a vector (nothing is added then).
    /// An item that already has a vector is left as it is (returns its vector).
    @discardableResult
    package mutating func foldIn(_ id: ByteId, degree: Int64, row: [(ByteId, UInt32)]) -> [Float]? {
        if let existing = vector(id) { return existing }
        guard let (x, u) = foldedVector(id, degree: degree, row: row) else { return nil }
        rowOf[id] = items.count
        items.append(id)
        vectors.append(contentsOf: x)
        basis.append(contentsOf: u)
        degrees.append(max(1, degree))
        return x
    }

    /// (published vector, basis row) of a fold-in; nil when no neighbour has a vector.
    package func foldedVector(_ id: ByteId, degree: Int64, row: [(ByteId, UInt32)]) -> ([Float], [Float])? {
        foldedVector(degree: degree) { visit in
            for (j, c) in row { if let r = rowOf[j] { visit(r, c) } }
        }
    }

    /// The same with the row's neighbours already resolved to rows of this
    /// set: `forEachEntry` calls its argument with (row in `vectors`, count)
    /// for each neighbour that has a vector, in the row's order (the sum's
    /// order, so the result is bit-identical to the id form's). The
    /// processor's path: its rows keep neighbours as interned numbers, which
    /// it maps to rows once a version (no id array, no hash per entry).
    package func foldedVector(degree: Int64, forEachEntry: ((_ row: Int, _ count: UInt32) -> Void) -> Void) -> ([Float], [Float])? {
        var acc = [Double](repeating: 0, count: dimension)
        var any = false
        let ni = Double(max(1, degree))
        forEachEntry { r, c in
            any = true
            let a = Double(c) / (ni * Double(max(1, degrees[r]))).squareRoot().squareRoot()
            let base = r * dimension
            for k in 0..<dimension { acc[k] += a * Double(vectors[base + k]) }
        }
        guard any else { return nil }
        var x = [Float](repeating: 0, count: dimension)
        var u = [Float](repeating: 0, count: dimension)
        for k in 0..<dimension where eigenvalues[k] > 0 {
            let lambda = Double(eigenvalues[k])
            x[k] = Float(acc[k] / lambda)
            u[k] = Float(acc[k] / lambda / lambda.squareRoot().squareRoot())
        }
        return (x, u)
    }
}
