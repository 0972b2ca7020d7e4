import FreshetCore

extension TaskDriver {
    /// Sends `logs` (each source task's records, in order) in a seeded random
    /// interleaving, as partitions fetched and polled in no fixed order would
    /// deliver them to the engine. At each step a random log with records
    /// left gives its next 1...`maxChunk` records, then 0...`maxRuns`
    /// randomly chosen tasks run, then `afterStep` may act on the driver
    /// (a checkpoint, a crash) with the same generator. Each log keeps its
    /// own order. Returns once every record is sent; tasks may still have
    /// input to read (`runUntilQuiet`).
    ///
    /// The same `seed` gives the same schedule in every process (logs and
    /// tasks are taken in the order of their names, never a dictionary's).
    package func sendInRandomOrder(_ logs: [TaskId: [[UInt8]]], seed: UInt64, maxChunk: Int, maxRuns: Int,
                                   afterStep: (inout SplitMix64) throws -> Void) rethrows {
        precondition(maxChunk > 0 && maxRuns >= 0, "a step sends at least one record")
        var rng = SplitMix64(seed: seed)
        let sources = logs.keys.sorted { $0.description < $1.description }
        let tasks = self.tasks.keys.sorted { $0.description < $1.description }
        var next = [Int](repeating: 0, count: sources.count)
        while true {
            let open = sources.indices.filter { next[$0] < (logs[sources[$0]]?.count ?? 0) }
            guard let s = open.randomElement(using: &rng), let log = logs[sources[s]] else { return }
            let to = min(log.count, next[s] + Int.random(in: 1...maxChunk, using: &rng))
            for value in log[next[s]..<to] { send(sources[s].stage, partition: sources[s].partition, value) }
            next[s] = to
            for _ in 0..<Int.random(in: 0...maxRuns, using: &rng) {
                if let task = tasks.randomElement(using: &rng) { run(task) }
            }
            try afterStep(&rng)
        }
    }

    /// `sendInRandomOrder` with nothing done between steps.
    package func sendInRandomOrder(_ logs: [TaskId: [[UInt8]]], seed: UInt64, maxChunk: Int, maxRuns: Int) {
        sendInRandomOrder(logs, seed: seed, maxChunk: maxChunk, maxRuns: maxRuns) { (_: inout SplitMix64) in }
    }
}
