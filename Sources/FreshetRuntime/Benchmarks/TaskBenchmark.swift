import FreshetCore
import FreshetKafka

/// `freshet bench tasks`: the task layer alone, in process and on one thread
/// (`TaskDriver`: in-memory partition logs instead of the broker, no Redis,
/// no consumer): every source, counts and item task of a topology fed a
/// stream in batches, and the CPU each stage spends per source event. What
/// the end-to-end benchmark cannot show on this machine (the broker and
/// Redis share its two cores, and watermark alignment makes its runs
/// timing-dependent): the processing thread's own cost, stage by stage, the
/// same input giving the same work in every run.
///
/// Not measured: the Kafka client (fetch, produce), the Redis writer, the
/// flush's rendering and the checkpoints (the driver takes none), the user
/// embedding side (positives carry no history) and the co-occurrence
/// counters' threads (in the process CPU, not in the stages).
package enum TaskBenchmark {
    /// One source event: its topic, key (the user id; partitions as the
    /// producer does) and JSON bytes.
    package typealias Event = (isImpression: Bool, key: String, json: [UInt8])

    package struct Report: Sendable, CustomStringConvertible {
        package var label: String
        package var events: Int
        package var wallSeconds: Double
        /// The process's user + system time: the tasks, the co-occurrence
        /// counters' threads and the generation of the input's JSON.
        package var processCPUSeconds: Double
        /// Thread CPU of each stage's tasks (processing and time ticks).
        package var stageCPUSeconds: [(stage: String, seconds: Double)]
        /// Every stage's together: the processing thread's work per event.
        package var tasksCPUSeconds: Double { stageCPUSeconds.reduce(0) { $0 + $1.seconds } }
        /// Records appended to each stage's input partitions, per source event.
        package var recordsPerEvent: [(stage: String, records: Double)]
        package var examples: Int
        /// The examples' order-independent digest: equal across builds that write the same examples.
        package var exampleDigest: ExampleDigest
        /// Peak entries of the joiners (the counts tasks'), and peak records
        /// the counts tasks held for the watermark, summed over tasks.
        package var joinerPeak: Int
        package var countsHeldPeak: Int

        package var description: String {
            func rate(_ seconds: Double) -> String { seconds > 0 ? String(Int((Double(events) / seconds).rounded())) : "-" }
            var lines = [String(format: "%@: %d events; tasks %.2f CPU-s = %@ events per CPU-second; process %.2f CPU-s with the input's generation; wall %.2f s",
                                label, events, tasksCPUSeconds, rate(tasksCPUSeconds), processCPUSeconds, wallSeconds)]
            lines.append("  stages (CPU-s, events per CPU-second): " + stageCPUSeconds.map {
                String(format: "%@ %.2f (%@)", $0.stage, $0.seconds, rate($0.seconds))
            }.joined(separator: ", "))
            lines.append("  records appended per source event: " + recordsPerEvent.map {
                String(format: "%@ %.2f", $0.stage, $0.records)
            }.joined(separator: ", "))
            if examples > 0 || joinerPeak > 0 {
                lines.append("  examples digest: \(exampleDigest)")
                lines.append("  examples \(examples); joiner peak \(joinerPeak) entries, counts stage peak \(countsHeldPeak) held records (summed over tasks)")
            }
            return lines.joined(separator: "\n")
        }
    }

    /// Feeds `events` to the tasks of `topology` (`partitions` per source and
    /// repartition topic), `batch` events between runs of every task, then
    /// ends the sources as a bounded run does (everything held is released).
    /// `nowMs`: the wall clock the tasks see (events must not be in its future).
    package static func run<S: Sequence>(_ events: S, label: String, topology: Topology, partitions: Int32,
                                         batch: Int = 4_096, nowMs: Int64) -> Report where S.Element == Event {
        precondition(partitions > 0 && batch > 0)
        let driver = TaskDriver(topology: topology, interactionPartitions: partitions, impressionPartitions: partitions,
                                repartitionPartitions: partitions, nowMs: nowMs, itemEmbeddings: topology.embeddings.enabled)
        driver.keepsLogs = false
        driver.measuresStages = true
        let cpuBefore = CPUClock.processSeconds()
        let started = ContinuousClock.now
        var count = 0
        for event in events {
            let key = Array(event.key.utf8)
            let partition = KafkaProducer.partition(forKey: key, partitionCount: partitions)
            driver.send(event.isImpression ? .impressions : .interactions, partition: partition, event.json)
            count += 1
            if count % batch == 0 { driver.runUntilQuiet() }
        }
        driver.runUntilQuiet()
        driver.finishSources()
        let wall = started.duration(to: .now)
        let counts = driver.tasks.values.compactMap { $0 as? CountTask }
        let order: [TaskId.Stage] = TaskId.Stage.allCases
        let stages = order.compactMap { stage in driver.stageCPUSeconds[stage].map { (stage.rawValue, $0) } }
        let records = order.compactMap { stage in
            driver.recordsAppended[stage].map { (stage.rawValue, Double($0) / Double(max(count, 1))) }
        }
        return Report(label: label, events: count,
                      wallSeconds: Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18,
                      processCPUSeconds: CPUClock.processSeconds() - cpuBefore,
                      stageCPUSeconds: stages, recordsPerEvent: records, examples: driver.examplesWritten,
                      exampleDigest: driver.exampleDigest,
                      joinerPeak: counts.reduce(0) { $0 + $1.joiner.peakStateCount },
                      countsHeldPeak: counts.reduce(0) { $0 + $1.peakHeld })
    }
}
