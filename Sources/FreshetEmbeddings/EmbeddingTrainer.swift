import FreshetCore

/// Loss of the online learner (DESIGN, "Online embeddings").
package enum EmbeddingLoss: String, Sendable, CaseIterable {
    /// Pairwise: -log σ(s⁺ − s⁻ⱼ) per sampled negative (BPR).
    case bpr
    /// Pointwise: -log σ(s⁺) − Σⱼ log σ(−s⁻ⱼ).
    case logistic
}

/// How sampled negatives are drawn.
package enum NegativeSampling: String, Sendable, CaseIterable {
    /// Proportional to the item's positive count so far (Fenwick tree), with the
    /// log(N·Q) correction when `logQCorrection` is on.
    case frequency
    /// Uniform over admitted items (no correction needed).
    case uniform
}

package struct EmbeddingTrainerConfig: Sendable {
    /// Vector dimension including the bias coordinate.
    package var dimension: Int
    package var loss: EmbeddingLoss
    /// Sampled negatives per positive example.
    package var negatives: Int
    /// Gradient steps per example (same negatives each step).
    package var stepsPerExample: Int
    package var userOptimizer: EmbeddingOptimizer
    package var itemOptimizer: EmbeddingOptimizer
    package var sampling: NegativeSampling
    /// Subtract log(N·Q(j)) from a sampled negative's logit (Yi et al. 2019, relative to uniform).
    package var logQCorrection: Bool
    package var userAdmitAfter: Int
    package var itemAdmitAfter: Int
    package var ttlMs: Int64
    package var initStd: Float
    /// Ring buffer of recent positives replayed for extra passes (0 = off).
    package var replayBufferSize: Int
    /// Replayed positives trained after each new positive.
    package var replayPerExample: Int
    /// Weight of explicit negatives (skip, impressed-not-engaged), trained pointwise.
    package var explicitNegativeWeight: Float
    package var seed: UInt64

    /// Defaults per loss, from DESIGN's offline study and our planted-data measurements
    /// (docs/EMBEDDINGS.md): BPR + Adagrad + 16 negatives; logistic + 2 SGD steps +
    /// larger step + 4 negatives.
    package init(loss: EmbeddingLoss = .bpr, dimension: Int = 128, seed: UInt64 = 42) {
        self.dimension = dimension
        self.loss = loss
        self.sampling = .frequency
        self.logQCorrection = true
        self.userAdmitAfter = 1
        self.itemAdmitAfter = 1
        self.ttlMs = 30 * 24 * 3_600_000
        self.initStd = 0.1
        self.replayBufferSize = 0
        self.replayPerExample = 0
        self.explicitNegativeWeight = 1
        self.seed = seed
        switch loss {
        case .bpr:
            negatives = 16
            stepsPerExample = 1
            userOptimizer = .adagrad(learningRate: 0.05, initialAccumulator: 0.01)
            itemOptimizer = .adagrad(learningRate: 0.05, initialAccumulator: 0.01)
        case .logistic:
            negatives = 4
            stepsPerExample = 2
            userOptimizer = .sgd(learningRate: 0.1)
            itemOptimizer = .sgd(learningRate: 0.1)
        }
    }
}

/// A sampled negative as handed to `EmbeddingTrainer.gradients`.
package struct SampledNegative: Sendable {
    package var itemId: String
    package var vector: [Float]
    /// log(N·Q(item)) subtracted from the logit (0 when uncorrected).
    package var correction: Float
    package init(itemId: String, vector: [Float], correction: Float) {
        self.itemId = itemId; self.vector = vector; self.correction = correction
    }
}

/// Gradients of one example, to be applied by each parameter's owner with
/// `EmbeddingTable.applyGradient(id:gradient:)`.
package struct ExampleGradients: Sendable {
    package var userGradient: [Float]
    /// The example's item first, then each sampled negative (same order as given).
    package var itemGradients: [(itemId: String, gradient: [Float])]
    package var loss: Float
}

/// Online trainer (Monolith-style): the same code serves `freshet run` and `freshet eval`.
///
/// Scoring is the inner product of a user row and an item row. The bias is folded
/// into the vectors: the user's last coordinate is the constant 1 and the item's
/// last coordinate is its learned bias, so `u·v = Σ_{k<d−1} u_k v_k + b_i`, the
/// same number serving computes from the two Redis blobs.
package final class EmbeddingTrainer {
    package let config: EmbeddingTrainerConfig
    package let users: EmbeddingTable
    package let items: EmbeddingTable
    let sampler = FrequencySampler()
    var rng: SplitMix64
    let dim: Int

    // Scratch (no allocation on the hot path).
    private let userGrad: UnsafeMutablePointer<Float>
    private let userCopy: UnsafeMutablePointer<Float>
    private var negRows: [Int]
    private var negCorr: [Float]
    private var negScores: [Float]
    private var negCoef: [Float]

    struct PseudoUser { var sum: [Float]; var count: Int32; var lastSeen: Int64 }
    var pseudo: IdMap<PseudoUser> = [:]

    struct ReplayEntry { var user: Int32; var item: Int32; var userGen: UInt32; var itemGen: UInt32 }
    var replay: [ReplayEntry] = []
    var replayNext = 0

    package private(set) var examplesTrained = 0
    package private(set) var positivesTrained = 0
    package private(set) var negativesTrained = 0
    /// Examples that could not train because the user or item is not admitted yet.
    package private(set) var skippedUnadmitted = 0
    package private(set) var replaysTrained = 0

    package init(config: EmbeddingTrainerConfig = EmbeddingTrainerConfig()) {
        self.config = config
        dim = config.dimension
        users = EmbeddingTable(EmbeddingTableConfig(
            name: "user", dimension: config.dimension, admitAfter: config.userAdmitAfter,
            ttlMs: config.ttlMs, seed: config.seed ^ 0x7573_6572, initStd: config.initStd,
            bias: .constantOne, optimizer: config.userOptimizer))
        items = EmbeddingTable(EmbeddingTableConfig(
            name: "item", dimension: config.dimension, admitAfter: config.itemAdmitAfter,
            ttlMs: config.ttlMs, seed: config.seed ^ 0x6974_656D, initStd: config.initStd,
            bias: .learned, optimizer: config.itemOptimizer))
        rng = SplitMix64(seed: config.seed ^ 0x6E65_6773)
        userGrad = .allocate(capacity: config.dimension)
        userCopy = .allocate(capacity: config.dimension)
        let k = max(config.negatives, 0)
        negRows = [Int](repeating: 0, count: k)
        negCorr = [Float](repeating: 0, count: k)
        negScores = [Float](repeating: 0, count: k)
        negCoef = [Float](repeating: 0, count: k)
        let s = sampler
        items.onEvictRow = { row in s.clear(row: row) }
    }

    deinit {
        userGrad.deallocate()
        userCopy.deallocate()
    }

    // MARK: simple path (one process owns both tables)

    /// Trains on one example, updating both tables. Returns the example's loss before
    /// the update, or nil when the user or the item is not admitted yet.
    @discardableResult
    package func train(_ example: TrainingExample) -> Float? {
        let now = example.eventTs
        let usersBefore = users.count
        let uRow = users.observe(example.userId, now: now)
        let iRow = items.observe(example.itemId, now: now)
        if example.isPositive, let i = iRow { sampler.add(row: i, delta: 1) }
        if uRow != nil, users.count != usersBefore, !pseudo.isEmpty {
            pseudo.removeValue(forKey: example.userId)
        }
        if uRow == nil, example.isPositive, let i = iRow { addToPseudo(example.userId, itemRow: i, now: now) }
        guard let u = uRow, let i = iRow else { skippedUnadmitted += 1; return nil }
        examplesTrained += 1
        if example.isPositive {
            positivesTrained += 1
            let loss = trainPositive(user: u, item: i)
            if config.replayBufferSize > 0 {
                pushReplay(user: u, item: i)
                for _ in 0..<config.replayPerExample { replayOne() }
            }
            return loss
        } else {
            negativesTrained += 1
            return trainExplicitNegative(user: u, item: i)
        }
    }

    /// Coefficients of the loss w.r.t. each score: dL/ds⁺ and dL/ds⁻ⱼ. Shared by the
    /// fast path and `gradients(...)` so both compute the same update.
    @inline(__always)
    static func coefficients(loss: EmbeddingLoss, positive sPos: Float, negatives sNeg: UnsafePointer<Float>,
                             corrections: UnsafePointer<Float>, count k: Int,
                             negCoef: UnsafeMutablePointer<Float>) -> (Float, Float) {
        var coefPos: Float = 0
        var l: Float = 0
        if k == 0 || loss == .logistic {
            coefPos = sigmoid(sPos) - 1
            l = softplusNeg(sPos)
            for j in 0..<k {
                let z = sNeg[j] - corrections[j]
                negCoef[j] = sigmoid(z)
                l += softplusNeg(-z)
            }
        } else {
            for j in 0..<k {
                let x = sPos - (sNeg[j] - corrections[j])
                let sg = sigmoid(x)
                coefPos += sg - 1
                negCoef[j] = 1 - sg
                l -= _logf(max(sg, 1e-30)) // -log σ(x), one transcendental instead of two
            }
        }
        return (coefPos, l)
    }

    private func sampleNegativeRows(excluding item: Int) -> Int {
        let want = config.negatives
        var got = 0
        guard want > 0 else { return 0 }
        let live = items.liveRows.count
        switch config.sampling {
        case .frequency:
            guard sampler.total > sampler.count(row: item) else { return 0 }
            for _ in 0..<want {
                var tries = 0
                while tries < 4 {
                    let r = sampler.sample(&rng)
                    tries += 1
                    if r == item || items.rowIds[r] == nil { continue }
                    negRows[got] = r
                    negCorr[got] = config.logQCorrection ? sampler.logCorrection(row: r) : 0
                    got += 1
                    break
                }
            }
        case .uniform:
            guard live > 1 else { return 0 }
            for _ in 0..<want {
                var tries = 0
                while tries < 4 {
                    let r = Int(items.liveRows[rng.nextInt(live)])
                    tries += 1
                    if r == item { continue }
                    negRows[got] = r
                    negCorr[got] = 0
                    got += 1
                    break
                }
            }
        }
        return got
    }

    private func trainPositive(user u: Int, item i: Int) -> Float {
        let k = sampleNegativeRows(excluding: i)
        let d = dim
        var firstLoss: Float = 0
        for step in 0..<max(config.stepsPerExample, 1) {
            var coefPos: Float = 0
            users.values.withUnsafeBufferPointer { ub in
                items.values.withUnsafeBufferPointer { ib in
                    let U = ub.baseAddress!, I = ib.baseAddress!
                    let up = U + u * d
                    userCopy.update(from: up, count: d)
                    let ip = I + i * d
                    let sPos = dot(up, ip, d)
                    negRows.withUnsafeBufferPointer { nr in
                        negScores.withUnsafeMutableBufferPointer { ns in
                            for j in 0..<k { ns[j] = dot(up, I + nr[j] * d, d) }
                        }
                    }
                    let (cp, l) = negScores.withUnsafeBufferPointer { ns in
                        negCorr.withUnsafeBufferPointer { nc in
                            negCoef.withUnsafeMutableBufferPointer { co in
                                Self.coefficients(loss: config.loss, positive: sPos, negatives: ns.baseAddress!,
                                                  corrections: nc.baseAddress!, count: k, negCoef: co.baseAddress!)
                            }
                        }
                    }
                    coefPos = cp
                    if step == 0 { firstLoss = l }
                    // dL/du = coefPos·v_i + Σ coefⱼ·v_j
                    for c in 0..<d { userGrad[c] = coefPos * ip[c] }
                    negRows.withUnsafeBufferPointer { nr in
                        negCoef.withUnsafeBufferPointer { co in
                            for j in 0..<k { axpy(co[j], I + nr[j] * d, userGrad, d) }
                        }
                    }
                }
            }
            items.applyScaledGradient(row: i, direction: userCopy, scale: coefPos)
            for j in 0..<k { items.applyScaledGradient(row: negRows[j], direction: userCopy, scale: negCoef[j]) }
            users.applyScaledGradient(row: u, direction: userGrad, scale: 1)
        }
        return firstLoss
    }

    private func trainExplicitNegative(user u: Int, item i: Int) -> Float {
        let d = dim
        let w = config.explicitNegativeWeight
        var coef: Float = 0
        var loss: Float = 0
        users.values.withUnsafeBufferPointer { ub in
            items.values.withUnsafeBufferPointer { ib in
                let up = ub.baseAddress! + u * d, ip = ib.baseAddress! + i * d
                userCopy.update(from: up, count: d)
                let s = dot(up, ip, d)
                coef = w * sigmoid(s)
                loss = w * softplusNeg(-s)
                for c in 0..<d { userGrad[c] = coef * ip[c] }
            }
        }
        items.applyScaledGradient(row: i, direction: userCopy, scale: coef)
        users.applyScaledGradient(row: u, direction: userGrad, scale: 1)
        return loss
    }

    // MARK: replay

    private func pushReplay(user: Int, item: Int) {
        let e = ReplayEntry(user: Int32(user), item: Int32(item),
                            userGen: users.generations[user], itemGen: items.generations[item])
        if replay.count < config.replayBufferSize { replay.append(e) } else {
            replay[replayNext] = e
            replayNext = (replayNext + 1) % config.replayBufferSize
        }
    }

    private func replayOne() {
        guard !replay.isEmpty else { return }
        let e = replay[rng.nextInt(replay.count)]
        let u = Int(e.user), i = Int(e.item)
        guard users.generations[u] == e.userGen, items.generations[i] == e.itemGen,
              users.rowIds[u] != nil, items.rowIds[i] != nil else { return }
        _ = trainPositive(user: u, item: i)
        replaysTrained += 1
    }

    // MARK: split path (user side and item side owned by different tasks)

    /// The item owner's half of `train`'s bookkeeping: counts a sighting of the
    /// item (admission, expiry clock) and, for a positive, its sampling frequency.
    /// Returns the item's row once admitted.
    @discardableResult
    package func observeItem(_ itemId: String, positive: Bool, now: Int64) -> Int? {
        let row = items.observe(itemId, now: now)
        if positive, let row { sampler.add(row: row, delta: 1) }
        return row
    }

    /// Draws sampled negatives for a positive on `itemId` (with their current vectors
    /// and corrections), for owners that compute gradients away from the item table.
    package func sampleNegatives(excluding itemId: String) -> [SampledNegative] {
        let exclude = items.rowIndex(for: itemId) ?? -1
        let k = sampleNegativeRows(excluding: exclude)
        return (0..<k).map { j in
            SampledNegative(itemId: items.rowIds[negRows[j]]!, vector: items.vector(row: negRows[j]),
                            correction: negCorr[j])
        }
    }

    /// Gradients of one example from plain vectors (no table access): the user side
    /// applies `userGradient` to its row, the item side applies `itemGradients`.
    /// One step of the simple path `train(_:)` is exactly these gradients applied.
    package func gradients(for example: TrainingExample, userVector: [Float], itemVector: [Float],
                          negatives: [SampledNegative]) -> ExampleGradients {
        let d = dim
        precondition(userVector.count == d && itemVector.count == d)
        let sPos = userVector.withUnsafeBufferPointer { u in itemVector.withUnsafeBufferPointer { dot(u.baseAddress!, $0.baseAddress!, d) } }
        var coefPos: Float, loss: Float
        var coefs = [Float](repeating: 0, count: negatives.count)
        let negs: [SampledNegative] = example.isPositive ? negatives : []
        if example.isPositive {
            let scores = negs.map { n in userVector.withUnsafeBufferPointer { u in n.vector.withUnsafeBufferPointer { dot(u.baseAddress!, $0.baseAddress!, d) } } }
            let corr = negs.map(\.correction)
            (coefPos, loss) = scores.withUnsafeBufferPointer { s in corr.withUnsafeBufferPointer { c in coefs.withUnsafeMutableBufferPointer { co in
                Self.coefficients(loss: config.loss, positive: sPos, negatives: s.baseAddress!,
                                  corrections: c.baseAddress!, count: negs.count, negCoef: co.baseAddress!)
            } } }
        } else {
            let w = config.explicitNegativeWeight
            coefPos = w * sigmoid(sPos)
            loss = w * softplusNeg(-sPos)
        }
        var ug = itemVector.map { coefPos * $0 }
        for (j, n) in negs.enumerated() { for c in 0..<d { ug[c] += coefs[j] * n.vector[c] } }
        var ig: [(itemId: String, gradient: [Float])] = [(example.itemId, userVector.map { coefPos * $0 })]
        for (j, n) in negs.enumerated() { ig.append((n.itemId, userVector.map { coefs[j] * $0 })) }
        return ExampleGradients(userGradient: ug, itemGradients: ig, loss: loss)
    }

    // MARK: queries

    /// Inner product of the user's serving vector (row or pseudo) and the item's row.
    package func score(userId: String, itemId: String) -> Float? {
        guard let u = servingUserVector(for: userId)?.vector, let v = items.vector(for: itemId) else { return nil }
        return u.withUnsafeBufferPointer { a in v.withUnsafeBufferPointer { dot(a.baseAddress!, $0.baseAddress!, dim) } }
    }

    /// log(N·Q(item)) for the frequency sampler (nil if the item has no row); positive
    /// for items sampled more often than uniform, so their logits are pushed down.
    package func logQCorrection(itemId: String) -> Float? {
        guard let r = items.rowIndex(for: itemId) else { return nil }
        return sampler.logCorrection(row: r)
    }

    /// Positive count of an item as seen by the sampler.
    package func itemFrequency(_ itemId: String) -> Int64 {
        items.rowIndex(for: itemId).map { sampler.count(row: $0) } ?? 0
    }

    /// Distinct items with a positive so far (N of the correction).
    package var itemsSeen: Int { sampler.nonZero }

    // MARK: cold start

    private func addToPseudo(_ userId: String, itemRow i: Int, now: Int64) {
        var p = pseudo[userId] ?? PseudoUser(sum: [Float](repeating: 0, count: dim), count: 0, lastSeen: now)
        items.values.withUnsafeBufferPointer { ib in
            p.sum.withUnsafeMutableBufferPointer { s in axpy(1, ib.baseAddress! + i * dim, s.baseAddress!, dim) }
        }
        p.count += 1
        p.lastSeen = max(p.lastSeen, now)
        pseudo[userId] = p
    }

    /// Cold start: the mean of the given items' current vectors (items without a row
    /// are skipped), with the bias coordinate set back to the constant 1 so that its
    /// inner product with an item vector includes the item bias like a real user's.
    /// Nil if none of the items has a row.
    package func pseudoUserVector(positiveItems: [String]) -> [Float]? {
        var sum = [Float](repeating: 0, count: dim)
        var n = 0
        for id in positiveItems {
            guard let r = items.rowIndex(for: id) else { continue }
            items.values.withUnsafeBufferPointer { ib in
                sum.withUnsafeMutableBufferPointer { s in axpy(1, ib.baseAddress! + r * dim, s.baseAddress!, dim) }
            }
            n += 1
        }
        guard n > 0 else { return nil }
        return finishMean(sum, count: n)
    }

    private func finishMean(_ sum: [Float], count: Int) -> [Float] {
        let inv = 1 / Float(count)
        var v = sum.map { $0 * inv }
        v[dim - 1] = 1
        return v
    }

    /// The vector serving should use for a user: the user's row once admitted, else
    /// the running mean of the item vectors of the user's positives so far
    /// (`isPseudo == true`, maintained incrementally as a per-user running sum),
    /// else nil.
    package func servingUserVector(for userId: String) -> (vector: [Float], isPseudo: Bool)? {
        if let v = users.vector(for: userId) { return (v, false) }
        if let p = pseudo[userId], p.count > 0 { return (finishMean(p.sum, count: Int(p.count)), true) }
        return nil
    }

    /// Users currently served by a pseudo vector.
    package var pseudoUserCount: Int { pseudo.count }

    // MARK: expiry

    /// Evicts expired users and items (their sampling counts and pseudo-user sums go
    /// too); returns the evicted ids so the runtime can delete their Redis fields.
    package func evictExpired(now: Int64) -> (users: [String], items: [String]) {
        let u = users.evictExpired(now: now)
        let i = items.evictExpired(now: now)
        let cutoff = now &- config.ttlMs
        if !pseudo.isEmpty { pseudo = pseudo.filter { $0.value.lastSeen >= cutoff } }
        return (u, i)
    }
}
