import FreshetCore

/// Result of `EmbeddingBenchmark.run`.
package struct EmbeddingBenchmarkReport: Sendable {
    package var dimension: Int
    package var negatives: Int
    package var loss: EmbeddingLoss
    package var examples: Int
    package var seconds: Double
    /// Examples trained per second on one thread.
    package var examplesPerSecond: Double
    /// Memory per row (vector + Adagrad accumulator + metadata + index estimate).
    package var bytesPerRow: Int
    package var userRows: Int
    package var itemRows: Int

    package var summary: String {
        "embeddings: dim \(dimension), \(negatives) negatives, \(loss.rawValue): \(examples) examples in "
            + formatFixed(seconds, 3) + " s = " + formatFixed(examplesPerSecond, 0)
            + " examples/s (1 thread); \(bytesPerRow) bytes/row; \(userRows) user rows, \(itemRows) item rows"
    }
}

/// Single-thread training throughput of `EmbeddingTrainer.train` on a synthetic
/// Zipf-skewed stream (50k users, 10k items); example generation is not timed.
package enum EmbeddingBenchmark {
    package static func run(dim: Int, negatives: Int, examples: Int) -> EmbeddingBenchmarkReport {
        run(dim: dim, negatives: negatives, examples: examples, loss: .bpr)
    }

    package static func run(dim: Int, negatives: Int, examples: Int, loss: EmbeddingLoss,
                           users: Int = 50_000, items: Int = 10_000) -> EmbeddingBenchmarkReport {
        var config = EmbeddingTrainerConfig(loss: loss, dimension: dim, seed: 99)
        config.negatives = negatives
        config.stepsPerExample = 1
        let trainer = EmbeddingTrainer(config: config)
        var rng = SplitMix64(seed: 1234)
        // Zipf-ish item popularity by inverse-CDF of a power law on ranks.
        let userIds = (0..<users).map { "u\($0)" }
        let itemIds = (0..<items).map { "i\($0)" }
        var stream: [TrainingExample] = []
        stream.reserveCapacity(examples)
        var ts: Int64 = 1_732_700_000_000
        for _ in 0..<examples {
            ts += 10
            let u = rng.nextInt(users)
            let x = rng.nextUnit()
            let i = min(items - 1, Int(Double(items) * x * x * x))
            stream.append(TrainingExample(label: .positive, userId: userIds[u], itemId: itemIds[i],
                                          action: .click, eventTs: ts))
        }
        // Warm-up: admit rows so timing measures steady-state training.
        for ex in stream.prefix(min(examples, 20_000)) { trainer.train(ex) }
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for ex in stream { trainer.train(ex) }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return EmbeddingBenchmarkReport(dimension: dim, negatives: negatives, loss: loss, examples: examples,
                                        seconds: seconds, examplesPerSecond: Double(examples) / max(seconds, 1e-9),
                                        bytesPerRow: trainer.items.bytesPerRow,
                                        userRows: trainer.users.count, itemRows: trainer.items.count)
    }
}
