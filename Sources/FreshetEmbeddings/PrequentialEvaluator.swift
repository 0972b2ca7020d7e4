import FreshetCore

/// Hit rates of one model on one slice of the stream.
package struct RankingMetrics: Sendable, Equatable {
    /// Scored positive interactions in the slice.
    package var count: Int = 0
    package var hits10 = 0
    package var recallHits10 = 0
    package var recallHits50 = 0
    /// Targets never seen before (counted as misses everywhere).
    package var unseenTargets = 0

    package init() {}

    package var hr10: Double { count == 0 ? 0 : Double(hits10) / Double(count) }
    package var recall10: Double { count == 0 ? 0 : Double(recallHits10) / Double(count) }
    package var recall50: Double { count == 0 ? 0 : Double(recallHits50) / Double(count) }
}

package struct EvaluationSlices: Sendable, Equatable {
    /// The whole stream.
    package var full = RankingMetrics()
    /// The last `warmFraction` (20%) of the stream's events.
    package var warm = RankingMetrics()
}

package struct EvaluationReport: Sendable, Equatable {
    /// Events replayed (interactions and impressions).
    package var events = 0
    /// Positive interactions scored (users seen before).
    package var scored = 0
    package var model = EvaluationSlices()
    package var popularity = EvaluationSlices()
    /// False when Recall@10/@50 were not computed (then they read 0 and JSON has null).
    package var recallComputed = true
    /// Examples the trainer learned from (positives, skips, window-closed negatives).
    package var examplesTrained = 0
    package var joinerNegatives = 0

    /// `{"events":N,"scored":M,"model":{"full":{"hr10":..,"recall10":..,"recall50":..},"warm":{..}},"popularity":{..}}`
    package func jsonString() -> String {
        func num(_ x: Double, _ computed: Bool = true) -> String {
            guard computed, x.isFinite else { return "null" }
            return formatFixed(x, 6)
        }
        func m(_ r: RankingMetrics) -> String {
            "{\"hr10\": \(num(r.hr10)), \"recall10\": \(num(r.recall10, recallComputed)), \"recall50\": \(num(r.recall50, recallComputed))}"
        }
        func s(_ e: EvaluationSlices) -> String { "{\"full\": \(m(e.full)), \"warm\": \(m(e.warm))}" }
        return "{\"events\": \(events), \"scored\": \(scored), \"model\": \(s(model)), \"popularity\": \(s(popularity))}"
    }

    /// A human-readable table.
    package func table() -> String {
        var lines: [String] = []
        lines.append("events \(events), scored \(scored) (warm \(model.warm.count)), unseen targets \(model.full.unseenTargets), examples trained \(examplesTrained)")
        lines.append(pad("", 12) + pad("slice", 6) + pad("HR@10", 9) + pad("Recall@10", 11) + pad("Recall@50", 11))
        for (name, e) in [("model", model), ("popularity", popularity)] {
            for (slice, r) in [("full", e.full), ("warm", e.warm)] {
                let r10 = recallComputed ? formatFixed(r.recall10, 4) : "-"
                let r50 = recallComputed ? formatFixed(r.recall50, 4) : "-"
                lines.append(pad(name, 12) + pad(slice, 6) + pad(formatFixed(r.hr10, 4), 9) + pad(r10, 11) + pad(r50, 11))
            }
        }
        return lines.joined(separator: "\n")
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

func formatFixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return "nan" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let neg = x < 0
    let v = (abs(x) * scale).rounded()
    let ip = Int(v / scale)
    let fp = Int(v - Double(ip) * scale)
    var f = String(fp)
    while f.count < digits { f = "0" + f }
    return (neg ? "-" : "") + String(ip) + (digits > 0 ? "." + f : "")
}

/// Prequential (test-then-train) evaluation, exactly DESIGN's protocol:
///
/// - events in time order (the caller sorts, stably); impressions feed the joiner,
///   interactions are joined and every resulting example trains the model;
/// - for each positive interaction (u, i) of a user seen before (u had an earlier
///   interaction, any action) first score, then train;
/// - candidates are the items seen earlier in the stream (in earlier interactions,
///   any action; impressions do not add candidates) minus those u already
///   interacted with; a target never seen before counts as a miss;
/// - HR@10 ranks i against 100 negatives drawn uniformly (without replacement)
///   from the candidates (all of them when fewer); Recall@10 and Recall@50 rank i
///   against all candidates; rank = 1 + #higher + uniform(0...#tied), i.e. ties
///   broken at random;
/// - the whole stream and its last 20% of events ("warm") are reported apart;
/// - popularity baseline: score = positive interactions so far, same candidates,
///   same 100 negatives, same random tie-breaking.
///
/// The model scores with the trainer's serving vectors (the user's row, else the
/// pseudo-user mean); items without a row score −∞.
/// Full-catalog ranking counts candidates scoring above the target in one pass of
/// dot products over the seen items, then subtracts u's interacted items: no sort.
package struct PrequentialEvaluator: Sendable {
    package var hrNegatives: Int
    package var warmFraction: Double
    package var computeRecall: Bool
    package var seed: UInt64
    package var joinWindowMs: Int64
    /// Watermark = event ts − lag (the out-of-orderness bound, 5 s by default).
    package var watermarkLagMs: Int64

    package init(hrNegatives: Int = 100, warmFraction: Double = 0.2, computeRecall: Bool = true,
                seed: UInt64 = 7, joinWindowMs: Int64 = 10 * 60 * 1000, watermarkLagMs: Int64 = 5000) {
        self.hrNegatives = hrNegatives; self.warmFraction = warmFraction
        self.computeRecall = computeRecall; self.seed = seed
        self.joinWindowMs = joinWindowMs; self.watermarkLagMs = watermarkLagMs
    }

    package func evaluate(_ events: [InputEvent], trainer: EmbeddingTrainer) -> EvaluationReport {
        var report = EvaluationReport()
        report.events = events.count
        report.recallComputed = computeRecall
        let warmStart = events.count - Int((Double(events.count) * warmFraction).rounded())
        let joiner = ImpressionJoiner(windowMs: joinWindowMs)
        var rng = SplitMix64(seed: seed)
        let dim = trainer.dim
        let items = trainer.items

        var seenIdx: IdMap<Int> = [:]
        var seenItems: [String] = []
        var rowOf: [Int] = []
        var pop: [Int] = []
        var userItems: IdMap<Set<Int>> = [:]
        var scores: [Float] = []
        var lastEvictions = items.evictions
        var negatives: [Int] = []
        var chosen = Set<Int>()

        func refreshRow(_ item: String) {
            if let t = seenIdx[item] { rowOf[t] = items.rowIndex(for: item) ?? -1 }
        }
        func trainExample(_ ex: TrainingExample) {
            trainer.train(ex)
            report.examplesTrained += 1
            refreshRow(ex.itemId)
        }

        for (n, event) in events.enumerated() {
            for ex in joiner.advance(watermark: event.ts &- watermarkLagMs) {
                report.joinerNegatives += 1
                trainExample(ex)
            }
            switch event {
            case .impression(let e):
                joiner.recordImpression(e)
            case .interaction(let e):
                if e.action.isPositive, let hist = userItems[e.userId] {
                    report.scored += 1
                    let warm = n >= warmStart
                    if let t = seenIdx[e.itemId] {
                        let uvec = trainer.servingUserVector(for: e.userId)?.vector
                        let nSeen = seenItems.count
                        // Model score of seen item j.
                        func modelScore(_ j: Int) -> Float {
                            let r = rowOf[j]
                            if r < 0 { return -Float.infinity }
                            guard let uvec else { return 0 }
                            return uvec.withUnsafeBufferPointer { u in
                                items.values.withUnsafeBufferPointer { dot(u.baseAddress!, $0.baseAddress! + r * dim, dim) }
                            }
                        }
                        let candidates = nSeen - 1 - hist.subtracting([t]).count
                        // Uniform negatives for HR@10 (shared by both models).
                        negatives.removeAll(keepingCapacity: true)
                        let m = min(hrNegatives, candidates)
                        if m == candidates {
                            for j in 0..<nSeen where j != t && !hist.contains(j) { negatives.append(j) }
                        } else if candidates <= 2 * hrNegatives {
                            var all: [Int] = []
                            for j in 0..<nSeen where j != t && !hist.contains(j) { all.append(j) }
                            for a in 0..<m { all.swapAt(a, a + rng.nextInt(all.count - a)) }
                            negatives.append(contentsOf: all[0..<m])
                        } else {
                            chosen.removeAll(keepingCapacity: true)
                            while negatives.count < m {
                                let j = rng.nextInt(nSeen)
                                if j == t || hist.contains(j) || chosen.contains(j) { continue }
                                chosen.insert(j); negatives.append(j)
                            }
                        }
                        // Model.
                        if computeRecall {
                            if scores.count < nSeen { scores.append(contentsOf: repeatElement(0, count: nSeen - scores.count)) }
                            if let uvec {
                                uvec.withUnsafeBufferPointer { u in
                                    items.values.withUnsafeBufferPointer { iv in
                                        let up = u.baseAddress!, ip = iv.baseAddress!
                                        for j in 0..<nSeen {
                                            let r = rowOf[j]
                                            scores[j] = r < 0 ? -Float.infinity : dot(up, ip + r * dim, dim)
                                        }
                                    }
                                }
                            } else {
                                for j in 0..<nSeen { scores[j] = rowOf[j] < 0 ? -Float.infinity : 0 }
                            }
                            let st = scores[t]
                            var greater = 0, ties = 0
                            for j in 0..<nSeen { let s = scores[j]; if s > st { greater += 1 } else if s == st { ties += 1 } }
                            ties -= 1 // the target itself
                            for j in hist where j != t {
                                let s = scores[j]; if s > st { greater -= 1 } else if s == st { ties -= 1 }
                            }
                            let rank = 1 + greater + rng.nextInt(ties + 1)
                            record(&report.model, warm: warm) { $0.recallHits10 += rank <= 10 ? 1 : 0; $0.recallHits50 += rank <= 50 ? 1 : 0 }
                            var g = 0, tt = 0
                            for j in negatives { let s = scores[j]; if s > st { g += 1 } else if s == st { tt += 1 } }
                            let hrRank = 1 + g + rng.nextInt(tt + 1)
                            record(&report.model, warm: warm) { $0.hits10 += hrRank <= 10 ? 1 : 0 }
                        } else {
                            let st = modelScore(t)
                            var g = 0, tt = 0
                            for j in negatives { let s = modelScore(j); if s > st { g += 1 } else if s == st { tt += 1 } }
                            let hrRank = 1 + g + rng.nextInt(tt + 1)
                            record(&report.model, warm: warm) { $0.hits10 += hrRank <= 10 ? 1 : 0 }
                        }
                        // Popularity.
                        let pt = pop[t]
                        if computeRecall {
                            var greater = 0, ties = 0
                            for j in 0..<nSeen { let s = pop[j]; if s > pt { greater += 1 } else if s == pt { ties += 1 } }
                            ties -= 1
                            for j in hist where j != t {
                                let s = pop[j]; if s > pt { greater -= 1 } else if s == pt { ties -= 1 }
                            }
                            let rank = 1 + greater + rng.nextInt(ties + 1)
                            record(&report.popularity, warm: warm) { $0.recallHits10 += rank <= 10 ? 1 : 0; $0.recallHits50 += rank <= 50 ? 1 : 0 }
                        }
                        var g = 0, tt = 0
                        for j in negatives { let s = pop[j]; if s > pt { g += 1 } else if s == pt { tt += 1 } }
                        let hrRank = 1 + g + rng.nextInt(tt + 1)
                        record(&report.popularity, warm: warm) { $0.hits10 += hrRank <= 10 ? 1 : 0 }
                        record(&report.model, warm: warm) { $0.count += 1 }
                        record(&report.popularity, warm: warm) { $0.count += 1 }
                    } else {
                        for side in 0..<2 {
                            func miss(_ r: inout RankingMetrics) { r.count += 1; r.unseenTargets += 1 }
                            if side == 0 { record(&report.model, warm: warm, miss) } else { record(&report.popularity, warm: warm, miss) }
                        }
                    }
                }
                // Train.
                trainExample(joiner.recordInteraction(e))
                // Bookkeeping after scoring.
                let idx: Int
                if let t = seenIdx[e.itemId] { idx = t } else {
                    idx = seenItems.count
                    seenIdx[e.itemId] = idx
                    seenItems.append(e.itemId)
                    rowOf.append(items.rowIndex(for: e.itemId) ?? -1)
                    pop.append(0)
                }
                if e.action.isPositive { pop[idx] += 1 }
                userItems[e.userId, default: []].insert(idx)
            }
            if items.evictions != lastEvictions {
                lastEvictions = items.evictions
                for (j, id) in seenItems.enumerated() { rowOf[j] = items.rowIndex(for: id) ?? -1 }
            }
        }
        return report
    }

    private func record(_ s: inout EvaluationSlices, warm: Bool, _ f: (inout RankingMetrics) -> Void) {
        f(&s.full)
        if warm { f(&s.warm) }
    }
}
