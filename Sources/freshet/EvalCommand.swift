import ArgumentParser
import Foundation
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

    @Flag(help: "Skip Recall@10/@50 (full-catalog ranking).")
    var noRecall = false

    func run() async throws {
        guard let lossKind = EmbeddingLoss(rawValue: loss) else { throw ValidationError("--loss must be bpr or logistic") }
        guard let samplingKind = NegativeSampling(rawValue: sampling) else { throw ValidationError("--sampling must be frequency or uniform") }
        guard dim >= 2 else { throw ValidationError("--dim must be at least 2") }
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

        let stream: [TrainingEvent]
        if planted {
            stream = PlantedPreferences(PlantedConfig()).trainingEvents()
        } else {
            guard let events else { throw ValidationError("give --events FILE.jsonl (or --planted)") }
            stream = try Self.readEvents(path: events)
        }
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
            print(String(format: "%.1f s", seconds))
        }
    }

    /// Reads DESIGN-schema JSONL; unparsable lines are counted and reported on stderr.
    static func readEvents(path: String) throws -> [TrainingEvent] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(path)")
        }
        var parsed: [(ts: Int64, seq: Int, event: TrainingEvent)] = []
        var bad = 0
        var lineNo = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNo += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            switch parseLine(Data(line)) {
            case .success(let e): parsed.append((e.ts, parsed.count, e))
            case .failure(let reason):
                bad += 1
                if bad <= 10 { FileHandle.standardError.write(Data("line \(lineNo): skipped: \(reason.message)\n".utf8)) }
            }
        }
        if bad > 0 { FileHandle.standardError.write(Data("\(bad) unparsable line(s) skipped\n".utf8)) }
        parsed.sort { ($0.ts, $0.seq) < ($1.ts, $1.seq) }
        return parsed.map(\.event)
    }

    struct LineError: Error { var message: String }

    static func parseLine(_ line: Data) -> Result<TrainingEvent, LineError> {
        guard let obj = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else {
            return .failure(LineError(message: "not a JSON object"))
        }
        guard let user = id(obj["user_id"]) else { return .failure(LineError(message: "missing or mistyped user_id")) }
        guard let ts = int64(obj["ts"]) else { return .failure(LineError(message: "missing or mistyped ts")) }
        if let shown = obj["items_shown"] {
            guard let list = shown as? [Any] else { return .failure(LineError(message: "items_shown is not an array")) }
            var items: [String] = []
            for x in list {
                guard let i = id(x) else { return .failure(LineError(message: "mistyped item in items_shown")) }
                items.append(i)
            }
            let positions = (obj["positions"] as? [Any])?.compactMap { int64($0).map(Int.init) } ?? []
            return .success(.exposure(ExposureEvent(requestId: id(obj["request_id"]), userId: user, itemsShown: items,
                                                    positions: positions.count == items.count ? positions : [], ts: ts)))
        }
        guard let item = id(obj["item_id"]) else { return .failure(LineError(message: "missing or mistyped item_id")) }
        guard let a = obj["action"] as? String, let action = ExampleAction(rawValue: a) else {
            return .failure(LineError(message: "missing or unknown action"))
        }
        return .success(.engagement(EngagementEvent(userId: user, itemId: item, action: action, ts: ts,
                                                    dwellMs: int64(obj["dwell_ms"]), requestId: id(obj["request_id"]))))
    }

    /// IDs are JSON strings or integers; integers use their decimal form.
    static func id(_ v: Any?) -> String? {
        if let s = v as? String { return s }
        if let n = v as? NSNumber, !(v is Bool) {
            let d = n.doubleValue
            guard d == d.rounded(), abs(d) < 9.2e18 else { return nil }
            return String(n.int64Value)
        }
        return nil
    }

    static func int64(_ v: Any?) -> Int64? {
        guard let n = v as? NSNumber, !(v is Bool) else { return nil }
        let d = n.doubleValue
        guard d.isFinite, abs(d) < 9.2e18 else { return nil }
        return n.int64Value
    }
}
