import ArgumentParser
import Foundation
import FreshetCore
import FreshetEmbeddings
import FreshetWorkload

/// `freshet eval`: prequential (test-then-train) evaluation of the online embeddings
/// on a replayed JSONL stream, against the popularity baseline (DESIGN's protocol).
struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Prequential evaluation of the online embeddings on a JSONL event stream.",
        discussion: """
        Reads interaction and impression events (one JSON object a line, DESIGN's schema), \
        sorts them by ts (stably), replays them test-then-train through the same joiner and \
        trainer as `freshet run`, and reports HR@10, Recall@10 and Recall@50 for the whole \
        stream and its last 20% ("warm"), for the model and for the popularity baseline.
        """)

    @Option(help: "JSONL event file (interactions and impressions).")
    var events: String?

    @Flag(help: "Generate the default planted-cluster stream instead of reading --events.")
    var planted = false

    @Flag(help: "Print exactly one JSON object instead of a table.")
    var json = false

    @Option(help: "Embedding dimension (bias coordinate included).")
    var dim: Int = 64

    @Option(help: "Loss: bpr or logistic.")
    var loss: String = "bpr"

    @Option(help: "Sampled negatives per positive (default: 16 for bpr, 4 for logistic).")
    var negatives: Int?

    @Option(help: "Seed of the model initialisation and sampling.")
    var seed: UInt64 = 42

    @Option(help: "Gradient steps per example (default: 1 for bpr, 2 for logistic).")
    var steps: Int?

    @Option(help: "Learning rate override.")
    var lr: Float?

    @Option(help: "Replayed recent positives per new positive (0 = no replay buffer).")
    var replay: Int = 0

    @Option(help: "Replay buffer size (recent positives).")
    var replayBuffer: Int = 20_000

    @Option(help: "Negative sampling: frequency or uniform.")
    var sampling: String = "frequency"

    @Flag(help: "Disable the log(N·Q) correction of frequency-sampled negatives.")
    var noLogq = false

    @Option(help: "Frequency filter: admit users after N sightings.")
    var userAdmitAfter: Int = 1

    @Flag(help: "bpr: skip Recall@10/@50 (full-catalog ranking).")
    var noRecall = false

    @Flag(help: .hidden)
    var benchmarkEmbeddings = false

    @Option(help: "Model: cooc (streaming co-occurrence + spectral refresh, what `freshet run` serves) or bpr (the gradient trainer).")
    var model: String = "cooc"

    @Flag(help: "Generate the taste stream (power-law popularity, users with several tastes, sessions, bursts) instead of reading --events.")
    var taste = false

    @Option(help: "Taste stream size in interactions.")
    var tasteInteractions: Int = 150_000

    @Option(help: "Write the generated stream (--taste or --planted) as JSON Lines to this file and exit.")
    var writeEvents: String?

    @Option(help: "cooc: spectral refresh every N positives.")
    var refreshEvery: Int = 5_000

    @Option(help: "cooc: score every N-th eligible positive in the prequential protocol (1 = all).")
    var stride: Int = 1

    @Option(help: "cooc: the session protocol's refresh at the cut runs cold from the seeded basis with N iterations, as a bounded run's final refresh (embeddings.final_iterations); 0: warm-started, as a mid-run refresh.")
    var cutIterations: Int = 0

    @Flag(help: "cooc: skip the batch references (PureSVD and EASE fit on the positives before the cut; dense n × n over the items with a positive, at most 8,000; minutes above a few thousand).")
    var noBatchReferences = false

    @Option(help: "cooc: EASE's ridge λ for the batch reference.")
    var easeLambda: Double = 500

    func run() async throws {
        if benchmarkEmbeddings {
            // Stand-in until `freshet bench embeddings` is wired: dim --dim, k --negatives.
            let report = EmbeddingBenchmark.run(dim: dim, negatives: negatives ?? 4, examples: 500_000,
                                                loss: EmbeddingLoss(rawValue: loss) ?? .bpr)
            print(report.summary)
            return
        }
        guard let lossKind = EmbeddingLoss(rawValue: loss) else { throw ValidationError("--loss must be bpr or logistic") }
        guard let samplingKind = NegativeSampling(rawValue: sampling) else { throw ValidationError("--sampling must be frequency or uniform") }
        guard dim >= 2 else { throw ValidationError("--dim must be at least 2") }
        guard easeLambda > 0, easeLambda.isFinite else {
            throw ValidationError("--ease-lambda must be a positive number (EASE's ridge: G + λI must be invertible)")
        }
        var config = EmbeddingTrainerConfig(loss: lossKind, dimension: dim, seed: seed)
        if let negatives { config.negatives = negatives }
        if let steps { config.stepsPerExample = steps }
        if let lr {
            switch config.itemOptimizer {
            case .sgd: config.itemOptimizer = .sgd(learningRate: lr); config.userOptimizer = .sgd(learningRate: lr)
            case .adagrad(_, let a):
                config.itemOptimizer = .adagrad(learningRate: lr, initialAccumulator: a)
                config.userOptimizer = .adagrad(learningRate: lr, initialAccumulator: a)
            }
        }
        config.sampling = samplingKind
        config.logQCorrection = !noLogq
        config.userAdmitAfter = userAdmitAfter
        if replay > 0 { config.replayPerExample = replay; config.replayBufferSize = replayBuffer }

        if let events, planted || taste {
            throw ValidationError("--events \(events) cannot be combined with --planted or --taste (they generate their own stream)")
        }
        let stream: [InputEvent]
        var world: PlantedPreferences?
        if taste {
            var tc = TasteStreamConfig()
            tc.interactions = tasteInteractions
            tc.seed = seed
            let events = TasteStream.events(tc)
            if let writeEvents {
                try events.map(TasteStream.jsonLine).joined(separator: "\n").appending("\n").write(toFile: writeEvents, atomically: true, encoding: .utf8)
                return
            }
            stream = events.map { .interaction($0) }
        } else if planted {
            world = PlantedPreferences(PlantedConfig())
            stream = world!.inputEvents()
        } else {
            guard let events else { throw ValidationError("give --events FILE.jsonl (or --planted)") }
            stream = try Self.readEvents(path: events)
            // Nothing to learn from or score: every figure would be 0 or 0/0.
            guard stream.contains(where: { if case .interaction(let i) = $0 { i.action.isPositive } else { false } }) else {
                throw ValidationError("\(events) holds no positive interaction to evaluate on")
            }
        }
        if model == "cooc" {
            try runCooccurrence(stream)
            return
        }
        guard model == "bpr" else { throw ValidationError("--model must be cooc or bpr") }
        let trainer = EmbeddingTrainer(config: config)
        let evaluator = PrequentialEvaluator(computeRecall: !noRecall, seed: seed)
        let start = Date()
        let report = evaluator.evaluate(stream, trainer: trainer)
        let seconds = Date().timeIntervalSince(start)
        if json {
            print(report.jsonString())
        } else {
            print("loss \(lossKind.rawValue), dim \(dim), \(config.negatives) negatives (\(samplingKind.rawValue)\(config.logQCorrection && samplingKind == .frequency ? ", log(N·Q) corrected" : "")), \(config.stepsPerExample) step(s), replay \(replay)")
            print(report.table())
            if let world { print("item vectors alone: same-cluster share of each item's 10 nearest items (inner product): " + String(format: "%.3f", Self.neighbourPurity(world, trainer))) }
            print(String(format: "%.1f s", seconds))
        }
    }

    /// Both protocols on the co-occurrence model. JSON: the prequential
    /// report's usual object plus `"session_retrieval"` and `"model_kind"`.
    func runCooccurrence(_ stream: [InputEvent]) throws {
        SpectralRefresh.useOneBLASThread()
        var cc = CooccurrenceConfig(dimension: dim)
        cc.seed = seed
        let cooc = CooccurrenceModel(config: cc, refreshEvery: refreshEvery)
        var evaluator = SessionEvaluator()
        evaluator.seed = seed
        evaluator.prequentialStride = max(1, stride)
        evaluator.cutColdIterations = cutIterations > 0 ? cutIterations : nil
        evaluator.batchReferences = !noBatchReferences
        evaluator.easeLambda = easeLambda
        let start = Date()
        let (prequential, session) = evaluator.evaluate(stream, model: cooc)
        let seconds = Date().timeIntervalSince(start)
        if json {
            var object = prequential.jsonString()
            object.removeLast()
            print(object + ", \"model_kind\": \"cooc\", \"session_retrieval\": \(session.jsonString())}")
        } else {
            print("co-occurrence model, dim \(dim), refresh every \(refreshEvery) positives (\(cooc.refreshes) refresh\(cooc.refreshes == 1 ? "" : "es")), \(cooc.rows.count) item rows, \(cooc.rows.entryCount) entries")
            print("prequential (current vectors, session = mean of last \(cc.history) items):")
            print(prequential.table())
            let m = session.model, p = session.popularity
            print("session retrieval (vectors frozen at event \(session.cutEvents)): scored \(m.count)")
            func lift(_ r: RankingMetrics) -> String {
                p.recall10 > 0 ? String(format: "%.2fx", r.recall10 / p.recall10) : "n/a"
            }
            func line(_ label: String, _ r: RankingMetrics, _ note: String = "") {
                let name = label.padding(toLength: 16, withPad: " ", startingAt: 0)
                print("  \(name)HR@10 \(String(format: "%.4f", r.hr10))  Recall@10 \(String(format: "%.4f", r.recall10))  Recall@50 \(String(format: "%.4f", r.recall50))\(note)")
            }
            line("vectors", m, "  Recall@10 lift \(lift(m))")
            line("popularity", p)
            if let r = session.pureSVD, let k = session.pureSVDRank { line("PureSVD k=\(k)", r, "  Recall@10 lift \(lift(r))  (batch)") }
            if let r = session.ease, let l = session.easeLambda { line("EASE λ=\(String(format: "%g", l))", r, "  Recall@10 lift \(lift(r))  (batch)") }
            if session.pureSVD != nil || session.ease != nil { print("  (batch: fit once on every positive before the cut)") }
            if let skipped = session.batchSkipped { print("  \(skipped)") }
            let pp = prequential.popularity.full.recall10
            print("  prequential Recall@10 lift \(pp > 0 ? String(format: "%.2fx", prequential.model.full.recall10 / pp) : "n/a")")
            print(String(format: "%.1f s", seconds))
        }
    }

    /// Planted ground truth: for each item, the share of its 10 highest inner-product
    /// neighbours (item vectors only, bias coordinate left out) in its own cluster.
    /// Chance level is about 1/K. Measures whether item vectors carry co-consumption
    /// structure by themselves ("similar items").
    static func neighbourPurity(_ world: PlantedPreferences, _ trainer: EmbeddingTrainer) -> Double {
        let ids = (0..<world.config.items).map(PlantedPreferences.itemId)
        let vecs = ids.map { trainer.items.vector(for: $0).map { Array($0.dropLast()) } }
        var total = 0.0, n = 0
        for (a, va) in vecs.enumerated() {
            guard let va else { continue }
            var scored: [(Float, Int)] = []
            for (b, vb) in vecs.enumerated() where b != a {
                guard let vb else { continue }
                scored.append((zip(va, vb).reduce(0) { $0 + $1.0 * $1.1 }, b))
            }
            let top = scored.sorted { $0.0 > $1.0 }.prefix(10)
            total += Double(top.filter { world.itemCluster[$0.1] == world.itemCluster[a] }.count) / Double(max(top.count, 1))
            n += 1
        }
        return n == 0 ? 0 : total / Double(n)
    }

    /// Reads DESIGN-schema JSONL through the processor's decoder (`EventLines`):
    /// a line `freshet run` would dead-letter is skipped here, with its reason on
    /// stderr. Events are sorted by ts, stably.
    static func readEvents(path: String) throws -> [InputEvent] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(path)")
        }
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        let lines = EventLines(Array(data), nowMs: nowMs)
        for rejected in lines.rejected.prefix(10) {
            FileHandle.standardError.write(Data("line \(rejected.line): skipped: \(rejected.problem)\n".utf8))
        }
        if !lines.rejected.isEmpty {
            FileHandle.standardError.write(Data("\(lines.rejected.count) line(s) skipped (bad input for the processor)\n".utf8))
        }
        return lines.events.enumerated().sorted { ($0.element.ts, $0.offset) < ($1.element.ts, $1.offset) }.map(\.element)
    }
}
