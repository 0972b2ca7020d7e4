import FreshetCore

/// How the last coordinate of a table's vectors carries the folded bias.
///
/// Scoring is a plain inner product `u·v`. The user table keeps its last
/// coordinate fixed at 1 (`constantOne`) and the item table learns its last
/// coordinate as the item bias (`learned`), so `u·v = Σ_{k<d-1} u_k v_k + b_item`:
/// serving's inner product of the two stored blobs includes the bias with no
/// extra field.
package enum BiasCoordinate: String, Sendable {
    /// No bias coordinate: every coordinate is a free factor.
    case none
    /// Last coordinate is the constant 1 (never updated). Use on the user side.
    case constantOne
    /// Last coordinate is a learned bias, initialised to 0. Use on the item side.
    case learned
}

/// Per-coordinate update rule of a table.
package enum EmbeddingOptimizer: Sendable, Equatable {
    case sgd(learningRate: Float)
    case adagrad(learningRate: Float, initialAccumulator: Float)
}

package struct EmbeddingTableConfig: Sendable {
    package var name: String
    /// Vector dimension, bias coordinate included (the Redis blob is dimension × 4 bytes).
    package var dimension: Int
    /// Frequency filter: an id gets a row the N-th time it is seen.
    package var admitAfter: Int
    /// Expiry: rows (and admission counters) not seen for this much event time are evicted.
    package var ttlMs: Int64
    /// Seed of the deterministic initialisation (mixed with a stable hash of the id).
    package var seed: UInt64
    /// Standard deviation of the initial N(0, σ²) coordinates.
    package var initStd: Float
    package var bias: BiasCoordinate
    package var optimizer: EmbeddingOptimizer

    package init(name: String, dimension: Int = 128, admitAfter: Int = 1,
                ttlMs: Int64 = 30 * 24 * 3_600_000, seed: UInt64 = 0x5EED,
                initStd: Float = 0.01, bias: BiasCoordinate = .none,
                optimizer: EmbeddingOptimizer = .adagrad(learningRate: 0.05, initialAccumulator: 0.1)) {
        precondition(dimension >= 2 && admitAfter >= 1 && ttlMs > 0)
        self.name = name; self.dimension = dimension; self.admitAfter = admitAfter
        self.ttlMs = ttlMs; self.seed = seed; self.initStd = initStd; self.bias = bias
        self.optimizer = optimizer
    }
}

package enum EmbeddingTableError: Error, Equatable {
    case malformedRow(String)
    case dimensionMismatch(expected: Int, found: Int)
}

/// A collisionless embedding table (Monolith): a dictionary from id to row index,
/// every admitted id its own row, no hashing trick. Vectors and Adagrad
/// accumulators live in two contiguous `[Float]` arrays with stride `dimension`;
/// freed rows are reused through a free list.
///
/// The table has one writer (the owner of the key's partition); it is not thread-safe.
package final class EmbeddingTable {
    package let config: EmbeddingTableConfig
    package let dimension: Int

    /// Row-major vectors, `dimension` floats per row (rows on the free list hold garbage).
    var values: [Float] = []
    /// Adagrad accumulators, same layout as `values`.
    var accumulators: [Float] = []
    /// Id of each row, nil when the row is free.
    var rowIds: [String?] = []
    var lastSeen: [Int64] = []
    /// Bumped every time a row is freed, so holders of row indices can tell reuse.
    var generations: [UInt32] = []
    var dirty: [Bool] = []
    var dirtyRows: [Int32] = []
    var index: IdMap<Int32> = [:]
    var freeList: [Int32] = []
    /// Dense list of live rows (for uniform sampling and scans) and each row's slot in it.
    var liveRows: [Int32] = []
    var livePos: [Int32] = []

    struct PendingAdmission { var count: Int32; var lastSeen: Int64 }
    var pendingAdmission: IdMap<PendingAdmission> = [:]

    /// Called with the row index of every evicted row (the trainer zeroes its sampling count).
    var onEvictRow: ((Int) -> Void)?

    package private(set) var admissions = 0
    package private(set) var evictions = 0

    // Optimizer parameters unpacked once (the hot path reads no enum, copies no config).
    let isAdagrad: Bool
    let learningRate: Float
    /// Coordinates an update touches (the constant-1 bias coordinate is skipped).
    let updatedCoordinates: Int

    package init(_ config: EmbeddingTableConfig) {
        self.config = config
        self.dimension = config.dimension
        switch config.optimizer {
        case .sgd(let lr): isAdagrad = false; learningRate = lr
        case .adagrad(let lr, _): isAdagrad = true; learningRate = lr
        }
        updatedCoordinates = config.bias == .constantOne ? config.dimension - 1 : config.dimension
    }

    /// Admitted ids.
    package var count: Int { index.count }
    /// Ids seen but not yet admitted.
    package var pendingAdmissionCount: Int { pendingAdmission.count }
    /// Rows allocated (live + free).
    package var allocatedRows: Int { rowIds.count }

    package func rowIndex(for id: String) -> Int? { index[id].map(Int.init) }
    package func contains(_ id: String) -> Bool { index[id] != nil }
    package func id(ofRow row: Int) -> String? { row < rowIds.count ? rowIds[row] : nil }
    package func generation(ofRow row: Int) -> UInt32 { generations[row] }

    /// Memory per admitted row: vector + accumulator floats, row metadata, and an
    /// estimate of the id→row dictionary entry (16-byte String + 4-byte index at a
    /// 0.75 load factor, plus the per-row id copy).
    package var bytesPerRow: Int {
        let floats = 2 * dimension * MemoryLayout<Float>.stride
        let meta = MemoryLayout<String?>.stride + MemoryLayout<Int64>.stride + MemoryLayout<UInt32>.stride
            + MemoryLayout<Bool>.stride + 2 * MemoryLayout<Int32>.stride
        let dict = (MemoryLayout<String>.stride + MemoryLayout<Int32>.stride) * 4 / 3 + 1
        return floats + meta + dict
    }

    // MARK: initialisation

    /// The deterministic initial vector of `id`: N(0, initStd²) per coordinate from a
    /// SplitMix64 seeded by the table seed and a stable hash of the id. Bias
    /// coordinate: 1 for `constantOne`, 0 for `learned`.
    package func initialVector(for id: String) -> [Float] {
        var v = [Float](repeating: 0, count: dimension)
        v.withUnsafeMutableBufferPointer { initialise($0.baseAddress!, id: id) }
        return v
    }

    func initialise(_ p: UnsafeMutablePointer<Float>, id: String) {
        var rng = SplitMix64(seed: StableHash.of(id.utf8, seed: config.seed))
        let sd = Double(config.initStd)
        var k = 0
        while k < dimension {
            // Box-Muller yields two normals per pair of uniforms.
            let u1 = max(rng.nextUnit(), 1e-300), u2 = rng.nextUnit()
            let r = (-2.0 * _log(u1)).squareRoot() * sd
            let t = 2.0 * Double.pi * u2
            p[k] = Float(r * _cos(t))
            if k + 1 < dimension { p[k + 1] = Float(r * _cos(t - Double.pi / 2)) }
            k += 2
        }
        switch config.bias {
        case .none: break
        case .constantOne: p[dimension - 1] = 1
        case .learned: p[dimension - 1] = 0
        }
    }

    var initialAccumulator: Float {
        if case .adagrad(_, let a) = config.optimizer { return a }
        return 0
    }

    // MARK: admission / rows

    /// Counts a sighting of `id` at event time `now`: refreshes its expiry clock,
    /// admits it on the `admitAfter`-th sighting. Returns its row once admitted.
    @discardableResult
    package func observe(_ id: String, now: Int64) -> Int? {
        if let r = index[id] {
            let row = Int(r)
            if now > lastSeen[row] { lastSeen[row] = now }
            return row
        }
        if config.admitAfter > 1 {
            var p = pendingAdmission[id] ?? PendingAdmission(count: 0, lastSeen: now)
            p.count += 1
            p.lastSeen = max(p.lastSeen, now)
            if Int(p.count) < config.admitAfter {
                pendingAdmission[id] = p
                return nil
            }
            pendingAdmission.removeValue(forKey: id)
        }
        let row = allocateRow(id: id, now: now)
        values.withUnsafeMutableBufferPointer { initialise($0.baseAddress! + row * dimension, id: id) }
        let a = initialAccumulator
        accumulators.withUnsafeMutableBufferPointer { buf in
            for k in 0..<dimension { buf[row * dimension + k] = a }
        }
        markTouched(row)
        admissions += 1
        return row
    }

    /// Sightings so far of an id that is not admitted yet (0 if unknown or admitted).
    package func pendingSightings(of id: String) -> Int { Int(pendingAdmission[id]?.count ?? 0) }

    private func allocateRow(id: String, now: Int64) -> Int {
        let row: Int
        if let r = freeList.popLast() {
            row = Int(r)
            rowIds[row] = id
            lastSeen[row] = now
        } else {
            row = rowIds.count
            rowIds.append(id)
            lastSeen.append(now)
            generations.append(0)
            dirty.append(false)
            livePos.append(-1)
            values.append(contentsOf: repeatElement(0, count: dimension))
            accumulators.append(contentsOf: repeatElement(0, count: dimension))
        }
        index[id] = Int32(row)
        livePos[row] = Int32(liveRows.count)
        liveRows.append(Int32(row))
        return row
    }

    private func freeRow(_ row: Int) {
        guard let id = rowIds[row] else { return }
        index.removeValue(forKey: id)
        rowIds[row] = nil
        generations[row] &+= 1
        dirty[row] = false
        let slot = Int(livePos[row])
        let last = liveRows.removeLast()
        if Int(last) != row {
            liveRows[slot] = last
            livePos[Int(last)] = Int32(slot)
        }
        livePos[row] = -1
        freeList.append(Int32(row))
        evictions += 1
        onEvictRow?(row)
    }

    /// Removes `id`'s row (e.g. an operator's delete); returns whether it existed.
    @discardableResult
    package func remove(_ id: String) -> Bool {
        pendingAdmission.removeValue(forKey: id)
        guard let r = index[id] else { return false }
        freeRow(Int(r))
        return true
    }

    // MARK: reads

    /// The vector of an admitted id; nil before admission.
    package func vector(for id: String) -> [Float]? {
        guard let r = index[id] else { return nil }
        return vector(row: Int(r))
    }

    package func vector(row: Int) -> [Float] {
        Array(values[(row * dimension)..<((row + 1) * dimension)])
    }

    /// The Redis `embedding_{dim}d` blob: float32 little-endian, dimension × 4 bytes.
    package func float32LittleEndianBlob(for id: String) -> [UInt8]? {
        guard let r = index[id] else { return nil }
        let row = Int(r)
        return values.withUnsafeBufferPointer {
            EmbeddingBlob.encode(UnsafeBufferPointer(rebasing: $0[(row * dimension)..<((row + 1) * dimension)]))
        }
    }

    // MARK: writes

    /// Applies one gradient to `id`'s row with the table's optimizer. Returns false
    /// when the id has no row. This is the entry point for a remote owner applying
    /// gradients computed elsewhere (`EmbeddingTrainer.gradients`).
    @discardableResult
    package func applyGradient(id: String, gradient: [Float]) -> Bool {
        precondition(gradient.count == dimension)
        guard let r = index[id] else { return false }
        gradient.withUnsafeBufferPointer { g in
            applyScaledGradient(row: Int(r), direction: g.baseAddress!, scale: 1)
        }
        return true
    }

    /// row -= step(scale · direction). The fast path used by the trainer.
    @inline(__always)
    func applyScaledGradient(row: Int, direction: UnsafePointer<Float>, scale: Float) {
        let d = dimension
        let n = updatedCoordinates
        let lr = learningRate
        values.withUnsafeMutableBufferPointer { vb in
            let w = vb.baseAddress! + row * d
            if isAdagrad {
                accumulators.withUnsafeMutableBufferPointer { ab in
                    adagradUpdate(w: w, acc: ab.baseAddress! + row * d, g: direction, scale: scale, lr: lr, n: n)
                }
            } else {
                sgdUpdate(w: w, g: direction, alpha: -lr * scale, n: n)
            }
        }
        markTouched(row)
    }

    @inline(__always)
    func markTouched(_ row: Int) {
        if !dirty[row] { dirty[row] = true; dirtyRows.append(Int32(row)) }
    }

    // MARK: sync, expiry

    /// Number of rows changed since the last `takeTouched()`.
    package var touchedCount: Int { dirtyRows.count }

    /// Ids whose rows changed (admitted or updated) since the last call; clears the set.
    /// The runtime writes exactly these rows to Redis at each sync interval.
    package func takeTouched() -> [String] {
        var out: [String] = []
        out.reserveCapacity(dirtyRows.count)
        for r in dirtyRows {
            let row = Int(r)
            if dirty[row], let id = rowIds[row] { out.append(id) }
            dirty[row] = false
        }
        dirtyRows.removeAll(keepingCapacity: true)
        return out
    }

    /// Evicts every row (and pending admission counter) not seen since `now - ttl`;
    /// returns the evicted admitted ids (the runtime deletes their Redis fields).
    package func evictExpired(now: Int64) -> [String] {
        evictExpiredRows(now: now).map(\.id)
    }

    package func evictExpiredRows(now: Int64) -> [(id: String, row: Int)] {
        let cutoff = now &- config.ttlMs
        var out: [(id: String, row: Int)] = []
        var i = 0
        while i < liveRows.count {
            let row = Int(liveRows[i])
            if lastSeen[row] < cutoff, let id = rowIds[row] {
                freeRow(row) // swaps the last live row into slot i
                out.append((id, row))
            } else {
                i += 1
            }
        }
        if !pendingAdmission.isEmpty {
            pendingAdmission = pendingAdmission.filter { $0.value.lastSeen >= cutoff }
        }
        return out
    }

    // MARK: checkpoints

    static let rowFormatVersion: UInt8 = 1

    /// Encodes `id`'s row for a checkpoint: version (1 byte), dimension (u32 LE),
    /// last seen (i64 LE), then the vector and the accumulators as float32 LE.
    package func encodeRow(_ id: String) -> [UInt8]? {
        guard let r = index[id] else { return nil }
        let row = Int(r)
        var out: [UInt8] = [Self.rowFormatVersion]
        out.reserveCapacity(13 + 8 * dimension)
        appendLE(UInt32(dimension), &out)
        appendLE(UInt64(bitPattern: lastSeen[row]), &out)
        for k in 0..<dimension { appendLE(values[row * dimension + k].bitPattern, &out) }
        for k in 0..<dimension { appendLE(accumulators[row * dimension + k].bitPattern, &out) }
        return out
    }

    /// Restores a row written by `encodeRow` (admitting the id if needed).
    package func restoreRow(_ id: String, from bytes: [UInt8]) throws {
        guard bytes.count >= 13, bytes[0] == Self.rowFormatVersion else {
            throw EmbeddingTableError.malformedRow(id)
        }
        let dim = Int(readLE32(bytes, 1))
        guard dim == dimension else { throw EmbeddingTableError.dimensionMismatch(expected: dimension, found: dim) }
        guard bytes.count == 13 + 8 * dim else { throw EmbeddingTableError.malformedRow(id) }
        let seen = Int64(bitPattern: UInt64(readLE32(bytes, 5)) | UInt64(readLE32(bytes, 9)) << 32)
        pendingAdmission.removeValue(forKey: id)
        let row: Int
        if let r = index[id] { row = Int(r); lastSeen[row] = seen } else {
            row = allocateRow(id: id, now: seen)
            admissions += 1
        }
        for k in 0..<dim {
            values[row * dim + k] = Float(bitPattern: readLE32(bytes, 13 + 4 * k))
            accumulators[row * dim + k] = Float(bitPattern: readLE32(bytes, 13 + 4 * (dim + k)))
        }
        markTouched(row)
    }

    /// Admission counters of ids not admitted yet, for checkpoints.
    package func pendingAdmissions() -> [(id: String, count: Int, lastSeen: Int64)] {
        pendingAdmission.map { ($0.key, Int($0.value.count), $0.value.lastSeen) }
    }

    package func restorePendingAdmission(id: String, count: Int, lastSeen: Int64) {
        guard index[id] == nil else { return }
        pendingAdmission[id] = PendingAdmission(count: Int32(count), lastSeen: lastSeen)
    }
}

@inline(__always)
private func appendLE<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
    var x = v.littleEndian
    withUnsafeBytes(of: &x) { out.append(contentsOf: $0) }
}

@inline(__always)
private func readLE32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}
