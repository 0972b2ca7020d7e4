import FreshetCore
import CLinearAlgebra

/// Session-retrieval figures (DESIGN, "Evaluating published vectors").
package struct SessionRetrievalReport: Sendable, Equatable {
    /// Where the vectors were frozen (events replayed before the cut).
    package var cutEvents = 0
    package var model = RankingMetrics()
    package var popularity = RankingMetrics()
    /// The batch references fit on the positives before the cut (`BatchReferences`), scored on the same
    /// positives with the same candidates; nil when not asked for or not fit (`batchSkipped` says why).
    package var pureSVD: RankingMetrics?
    package var ease: RankingMetrics?
    package var easeLambda: Double?
    /// PureSVD's k (the dimension, at most the fitted items).
    package var pureSVDRank: Int?
    package var batchSkipped: String?
    /// Recall@10 of the vectors over Recall@10 of popularity.
    package var recallLift: Double { popularity.recall10 > 0 ? model.recall10 / popularity.recall10 : .infinity }

    package func jsonString() -> String {
        func m(_ r: RankingMetrics) -> String {
            "{\"hr10\": \(formatFixed(r.hr10, 6)), \"recall10\": \(formatFixed(r.recall10, 6)), \"recall50\": \(formatFixed(r.recall50, 6))}"
        }
        func lift(_ r: RankingMetrics) -> String {
            popularity.recall10 > 0 ? formatFixed(r.recall10 / popularity.recall10, 4) : "null"
        }
        var batch = ""
        if let pureSVD, let pureSVDRank {
            batch += ", \"pure_svd\": \(m(pureSVD)), \"pure_svd_rank\": \(pureSVDRank), \"pure_svd_recall10_lift\": \(lift(pureSVD))"
        }
        if let ease, let easeLambda {
            // Swift's shortest round-trip form (1e-09, 0.25, 1e+20): valid JSON, and the λ used.
            batch += ", \"ease\": \(m(ease)), \"ease_lambda\": \(easeLambda), \"ease_recall10_lift\": \(lift(ease))"
        }
        if let batchSkipped {
            var quoted: [UInt8] = []
            JSONEscape.appendString(batchSkipped, to: &quoted)
            batch += ", \"batch_skipped\": " + String(decoding: quoted, as: UTF8.self)
        }
        return "{\"cut_events\": \(cutEvents), \"scored\": \(model.count), \"model\": \(m(model)), \"popularity\": \(m(popularity)), \"recall10_lift\": \(lift(model))\(batch)}"
    }
}

/// Evaluates the co-occurrence model with both protocols in one replay:
///
/// - prequential (DESIGN, test-then-train): for each positive (u, i) of a
///   user seen before, score with the session vector (mean of u's last 10
///   positive items' *current* vectors), then learn; candidates = items seen
///   so far minus u's earlier items (the target stays); fills the same
///   `EvaluationReport` as the BPR trainer's evaluation;
/// - session retrieval: at `cutFraction` of the events the model is
///   refreshed (as a bounded run ends) and its vectors frozen; for each later
///   positive of a user with at least one earlier positive, the mean of the
///   frozen vectors of u's last 10 positives ranks i against every seen item
///   minus u's own; a target without a vector is a miss. The baseline is a
///   popularity count updated at every event.
///
/// Ties are broken at random (rank = 1 + higher + U{0..tied}); HR@10 ranks
/// against 100 candidates drawn uniformly without replacement, shared by
/// model and baseline. Impressions are ignored (the model learns from positives).
package struct SessionEvaluator {
    package var hrNegatives = 100
    package var warmFraction = 0.2
    package var cutFraction = 0.8
    package var seed: UInt64 = 42
    /// Score every n-th eligible positive of the prequential protocol (1 = all).
    package var prequentialStride = 1
    /// The refresh at the cut: nil, warm-started from the model's last result
    /// (a mid-run refresh); n, cold from the seeded basis with n iterations
    /// (a bounded run's final refresh, what `freshet run --stop-at-end` publishes).
    package var cutColdIterations: Int?
    /// Also fit the batch references (`BatchReferences`) at the cut and score them in the session protocol.
    package var batchReferences = false
    /// EASE's λ for the batch references.
    package var easeLambda = 500.0

    package init() {}

    package func evaluate(_ events: [InputEvent], model: CooccurrenceModel) -> (EvaluationReport, SessionRetrievalReport) {
        var report = EvaluationReport()
        var session = SessionRetrievalReport()
        let dim = model.config.dimension
        var rng = SplitMix64(seed: seed)
        var seenIndex: [ByteId: Int] = [:]
        var seenItems: [ByteId] = []
        var popularity: [Float] = []
        var interacted: [ByteId: Set<Int>] = [:]
        var lastPositives: [ByteId: [Int]] = [:]
        // Dense copies of the vectors by seen index (zero row + hasVector flag when none).
        var current = [Float](), currentHas = [Bool]()
        var currentVersion: Int64 = -1
        var frozen = [Float](), frozenHas = [Bool]()
        var frozenSet: ItemVectorSet?
        let cut = Int(Double(events.count) * cutFraction)
        let warmStart = Int(Double(events.count) * (1 - warmFraction))
        var eligible = 0
        /// Seen indices whose vector may have changed by a fold-in since the dense copy was made.
        var folded: Set<Int> = []
        /// Each user's positive items before the cut (the batch references' training data).
        var positivesBeforeCut: [ByteId: [Int]] = [:]
        var batch: BatchReferences?
        /// Per seen item, whether the batch fit it (built at the cut; items seen since are not).
        var batchHas: [Bool] = []
        /// The batch references' own tie-breaking draws, so that turning them
        /// on leaves the model's and popularity's figures as they were.
        var batchRng = SplitMix64(seed: seed ^ 0x9E37_79B9_7F4A_7C15)

        func load(_ set: ItemVectorSet, into m: inout [Float], _ has: inout [Bool]) {
            m = [Float](repeating: 0, count: seenItems.count * dim)
            has = [Bool](repeating: false, count: seenItems.count)
            for (j, id) in seenItems.enumerated() {
                guard let r = set.rowOf[id] else { continue }
                has[j] = true
                for c in 0..<dim { m[j * dim + c] = set.vectors[r * dim + c] }
            }
        }
        func rank(_ scores: [Float], has: [Bool], target t: Int, exclude: Set<Int>, into metrics: inout RankingMetrics, sample: [Int]) {
            metrics.count += 1
            guard has[t] else { metrics.unseenTargets += 1; return }
            let st = scores[t]
            var higher = 0, tied = 0
            for j in 0..<scores.count where j != t && !exclude.contains(j) {
                if !has[j] { continue }
                if scores[j] > st { higher += 1 } else if scores[j] == st { tied += 1 }
            }
            let r = 1 + higher + (tied > 0 ? rng.nextInt(tied + 1) : 0)
            if r <= 10 { metrics.recallHits10 += 1 }
            if r <= 50 { metrics.recallHits50 += 1 }
            var sh = 0, stie = 0
            for j in sample {
                let s = has[j] ? scores[j] : -Float.infinity
                if s > st { sh += 1 } else if s == st { stie += 1 }
            }
            if 1 + sh + (stie > 0 ? rng.nextInt(stie + 1) : 0) <= 10 { metrics.hits10 += 1 }
        }
        func scores(_ m: [Float], _ q: [Float]) -> [Float] {
            let n = seenItems.count
            var out = [Float](repeating: 0, count: n)
            guard n > 0 else { return out }
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(dim), 1, m, Int32(dim), q, 1, 0, &out, 1)
            return out
        }
        func sampleCandidates(target t: Int, exclude: Set<Int>) -> [Int] {
            let pool = seenItems.count - 1 - exclude.count
            var chosen: Set<Int> = []
            if pool <= hrNegatives {
                for j in 0..<seenItems.count where j != t && !exclude.contains(j) { chosen.insert(j) }
            } else {
                while chosen.count < hrNegatives {
                    let j = rng.nextInt(seenItems.count)
                    if j != t && !exclude.contains(j) { chosen.insert(j) }
                }
            }
            return chosen.sorted()
        }
        /// The batch references on one session positive: items the batch never saw (new since
        /// the cut) have no vector or score, as with the frozen vectors.
        func rankBatch(_ batch: BatchReferences, history: [Int], target t: Int, exclude: Set<Int>, sample: [Int]) {
            batchHas.append(contentsOf: repeatElement(false, count: seenItems.count - batchHas.count))
            // A session with no fitted item scores every item 0: random order, as for the vectors.
            func padded(_ scores: [Float]?) -> [Float] {
                var s = scores ?? []
                s.append(contentsOf: repeatElement(0, count: seenItems.count - s.count))
                return s
            }
            swap(&rng, &batchRng)
            if session.pureSVD != nil {
                rank(padded(batch.pureSVDScores(history)), has: batchHas, target: t, exclude: exclude, into: &session.pureSVD!, sample: sample)
            }
            if session.ease != nil {
                rank(padded(batch.easeScores(history)), has: batchHas, target: t, exclude: exclude, into: &session.ease!, sample: sample)
            }
            swap(&rng, &batchRng)
        }

        for (n, event) in events.enumerated() {
            report.events += 1
            if n == cut {
                model.refresh(coldIterations: cutColdIterations)
                frozenSet = model.vectors
                if batchReferences {
                    do {
                        let fit = try BatchReferences.fit(userItems: Array(positivesBeforeCut.values), itemCount: seenItems.count,
                                                          dimension: dim, easeLambda: easeLambda)
                        batch = fit
                        batchHas = seenItems.indices.map { fit.isFitted($0) }
                        if fit.pureSVDVectors != nil {
                            session.pureSVD = RankingMetrics()
                            session.pureSVDRank = fit.dimension
                        }
                        if fit.easeWeights != nil {
                            session.ease = RankingMetrics()
                            session.easeLambda = easeLambda
                        }
                        if !fit.failures.isEmpty { session.batchSkipped = fit.failures.joined(separator: "; ") }
                    } catch {
                        session.batchSkipped = error.description
                    }
                    positivesBeforeCut = [:]
                }
            }
            guard case .interaction(let e) = event else { continue }
            let u = ByteId(e.userId), i = ByteId(e.itemId)
            let userSeen = interacted[u] != nil
            if e.action.isPositive, let t = seenIndex[i] {
                let exclude = (interacted[u] ?? []).subtracting([t])
                let history = lastPositives[u] ?? []
                // Prequential (every stride-th eligible positive of a seen user).
                if userSeen {
                    eligible += 1
                    report.scored += 1
                    if eligible % prequentialStride == 0 {
                        if currentVersion != model.vectors.version || current.count != seenItems.count * dim {
                            load(model.vectors, into: &current, &currentHas)
                            currentVersion = model.vectors.version
                        } else {
                            // Fold-ins change rows between refreshes: re-read the folded ones.
                            let set = model.vectors
                            for j in folded {
                                guard let r = set.rowOf[seenItems[j]] else { continue }
                                currentHas[j] = true
                                for c in 0..<dim { current[j * dim + c] = set.vectors[r * dim + c] }
                            }
                            folded.removeAll(keepingCapacity: true)
                        }
                        let sample = sampleCandidates(target: t, exclude: exclude)
                        let warm = n >= warmStart
                        if let q = meanRows(history, current, currentHas, dim) {
                            let s = scores(current, q)
                            rank(s, has: currentHas, target: t, exclude: exclude, into: &report.model.full, sample: sample)
                            if warm { rank(s, has: currentHas, target: t, exclude: exclude, into: &report.model.warm, sample: sample) }
                        } else {
                            // No history vector: every item with a vector scores 0 (random order).
                            let zero = [Float](repeating: 0, count: seenItems.count)
                            rank(zero, has: currentHas, target: t, exclude: exclude, into: &report.model.full, sample: sample)
                            if warm { rank(zero, has: currentHas, target: t, exclude: exclude, into: &report.model.warm, sample: sample) }
                        }
                        let allHave = [Bool](repeating: true, count: seenItems.count)
                        rank(popularity, has: allHave, target: t, exclude: exclude, into: &report.popularity.full, sample: sample)
                        if warm { rank(popularity, has: allHave, target: t, exclude: exclude, into: &report.popularity.warm, sample: sample) }
                    }
                }
                // Session retrieval after the cut: users with an earlier positive.
                if n >= cut, let frozenSet, !history.isEmpty {
                    if frozen.count != seenItems.count * dim { load(frozenSet, into: &frozen, &frozenHas) }
                    let sample = sampleCandidates(target: t, exclude: exclude)
                    if let q = meanRows(history, frozen, frozenHas, dim) {
                        rank(scores(frozen, q), has: frozenHas, target: t, exclude: exclude, into: &session.model, sample: sample)
                    } else {
                        session.model.count += 1
                    }
                    rank(popularity, has: [Bool](repeating: true, count: seenItems.count), target: t, exclude: exclude,
                         into: &session.popularity, sample: sample)
                    if let batch { rankBatch(batch, history: history, target: t, exclude: exclude, sample: sample) }
                }
            } else if e.action.isPositive, userSeen {
                report.scored += 1
                eligible += 1
                if eligible % prequentialStride == 0 {
                    report.model.full.count += 1; report.model.full.unseenTargets += 1
                    report.popularity.full.count += 1; report.popularity.full.unseenTargets += 1
                    if n >= warmStart {
                        report.model.warm.count += 1; report.model.warm.unseenTargets += 1
                        report.popularity.warm.count += 1; report.popularity.warm.unseenTargets += 1
                    }
                }
                if n >= cut, !(lastPositives[u] ?? []).isEmpty {
                    session.model.count += 1; session.model.unseenTargets += 1
                    session.popularity.count += 1; session.popularity.unseenTargets += 1
                    if batch != nil {
                        session.pureSVD?.count += 1; session.pureSVD?.unseenTargets += 1
                        session.ease?.count += 1; session.ease?.unseenTargets += 1
                    }
                }
            }
            // Train / update state.
            let t: Int
            if let known = seenIndex[i] { t = known } else {
                t = seenItems.count
                seenIndex[i] = t
                seenItems.append(i)
                popularity.append(0)
                current.append(contentsOf: [Float](repeating: 0, count: dim)); currentHas.append(false)
                if frozenSet != nil {
                    frozen.append(contentsOf: [Float](repeating: 0, count: dim)); frozenHas.append(false)
                    if let r = frozenSet?.rowOf[i] {
                        frozenHas[t] = true
                        for c in 0..<dim { frozen[t * dim + c] = frozenSet!.vectors[r * dim + c] }
                    }
                }
            }
            interacted[u, default: []].insert(t)
            if e.action.isPositive {
                popularity[t] += 1
                var h = lastPositives[u] ?? []
                h.removeAll { $0 == t }
                h.insert(t, at: 0)
                if h.count > model.config.history { h.removeLast() }
                lastPositives[u] = h
                model.observe(user: e.userId, item: e.itemId, positive: true, ts: e.ts)
                if batchReferences && n < cut { positivesBeforeCut[u, default: []].append(t) }
                if let r = model.vectors.rowOf[i], r >= model.vectors.refreshed { folded.insert(t) }
            }
        }
        session.cutEvents = cut
        report.examplesTrained = model.rows.count
        return (report, session)
    }

    private func meanRows(_ rows: [Int], _ m: [Float], _ has: [Bool], _ dim: Int) -> [Float]? {
        var q = [Float](repeating: 0, count: dim)
        var n = 0
        for j in rows where has[j] {
            for c in 0..<dim { q[c] += m[j * dim + c] }
            n += 1
        }
        guard n > 0 else { return nil }
        return q.map { $0 / Float(n) }
    }
}
