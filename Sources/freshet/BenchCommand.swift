import ArgumentParser
import Foundation
import FreshetCore
import FreshetEmbeddings
import FreshetKafka
import FreshetRedis
import FreshetRuntime
import FreshetWorkload
import Logging

/// Benchmarks anyone can run; figures, never pass/fail thresholds.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Freshet: end to end, freshness, the core alone, the task layer, memory per key, restore, Redis, embeddings.",
        subcommands: [EndToEnd.self, Freshness.self, Core.self, Tasks.self, Memory.self, Restore.self, RedisPipelines.self, Embeddings.self, Refresh.self]
    )
}

struct BenchClusterOptions: ParsableArguments {
    @Option(help: "Use this broker instead of starting a local one.")
    var brokers: String?
    @Option(help: "Use this Redis instead of starting a local one.")
    var redis: String?

    func start(_ name: String) throws -> BenchmarkCluster {
        warnIfLibrdkafkaIsTooOld()
        return try BenchmarkCluster(brokers: brokers, redisURL: redis, directory: ".freshet/bench-\(name)")
    }
}

/// Names of one benchmark run's own topics and Redis keys: given an existing
/// broker and Redis (`--brokers`, `--redis`), a run must neither write into
/// the deployment's topics and features nor read records an earlier run left
/// in its topics (they made the rate wrong: it divides the events it loaded).
struct BenchRunNames {
    let id = String(UUID().uuidString.prefix(8)).lowercased()
    var interactions: String { "freshet-bench-\(id)-interactions" }
    var impressions: String { "freshet-bench-\(id)-impressions" }
    /// Prefix of every Redis key the run writes (features and checkpoints).
    var keyPrefix: String { "freshet-bench-\(id):" }

    /// `topology` reading this run's topics and writing under its prefix
    /// (`keyPrefix`, or a run's own prefix under it).
    func apply(to topology: inout Topology, keyPrefix: String? = nil) {
        topology.sources.interactions = interactions
        topology.sources.impressions = impressions
        topology.redis.keyPrefix = keyPrefix ?? self.keyPrefix
    }
}

/// Deletes every key under `prefix` (SCAN + UNLINK), so the next measured
/// run of a benchmark starts with no keys of its own, as the first did, and
/// Redis's memory stays flat over many runs. Never touches other keys.
func deleteRedisKeys(prefix: String, redisURL: String) throws {
    let redis = try RedisConnection(url: redisURL, commandTimeoutMs: 30_000)
    defer { redis.close() }
    var cursor = "0"
    repeat {
        let reply = try redis.command(["SCAN", cursor, "MATCH", prefix + "*", "COUNT", "10000"]).array ?? []
        guard reply.count == 2, let next = reply[0].string else { return }
        cursor = next
        let keys = (reply[1].array ?? []).compactMap(\.string)
        if !keys.isEmpty { _ = try redis.command(["UNLINK"] + keys) }
    } while cursor != "0"
}

extension BenchCommand {
    struct EndToEnd: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "e2e",
            abstract: "Pre-load a stream (2:1 interactions to impressions), measure librdkafka's raw drain rate, then Freshet end to end with checkpoints on and off.")

        @OptionGroup var cluster: BenchClusterOptions
        @Option(help: "Events to pre-load.") var events = 2_000_000
        @Option(help: "Partitions per source topic.") var partitions: Int32 = 4
        @Option(help: "Distinct users.") var users = 100_000
        @Option(help: "Distinct items.") var items = 10_000
        @Flag(inversion: .prefixedNo, help: "Also measure with online embeddings on.") var withEmbeddings = true
        @Flag(inversion: .prefixedNo, help: "Also measure the default topology (embeddings + examples topic).") var withExamples = true
        @Option(help: "Run only these variants (1: features with checkpoints, 2: checkpoints off, 3: + embeddings, 4: + examples; repeatable). Default: all.")
        var only: [Int] = []
        @Option(help: "Watermark alignment's event_time.max_drift for the runs (a duration, or off; repeatable: each variant runs once per value). Default: the topology's (the join window with the examples topic on, else off).")
        var maxDrift: [String] = []
        @Option(name: .customLong("kafka"), help: ArgumentHelp("A librdkafka property for Freshet's clients in the runs, as the topology's kafka map sets it (repeatable).", valueName: "key=value"))
        var kafkaProperties: [String] = []
        @Option(help: "Log level of the measured runs, to stderr (info shows each run's timeline: partitions at their end, the bounded run complete, the final refresh).")
        var logLevel = "warning"
        @Option(help: "Run the selected variants this many times, alternating (1, 3, 1, 3, ...), each run on keys of its own, and end with each variant's median rate and the median of the embeddings' share (variant 3 over variant 1 of the same round): one run each says more about the host's minute than about the build.")
        var rounds = 1

        func validate() throws {
            guard rounds >= 1 else { throw ValidationError("--rounds \(rounds): expected at least 1") }
            _ = try parseLogLevel(logLevel)
            for text in kafkaProperties where !text.contains("=") {
                throw ValidationError("--kafka \(text): expected key=value, e.g. --kafka max.partition.fetch.bytes=4194304")
            }
            for text in maxDrift where parseMaxDrift(text) == nil {
                throw ValidationError("--max-drift \(text): expected a duration like 10m or 1h, or off")
            }
        }

        func run() throws {
            let services = try cluster.start("e2e")
            defer { services.stop() }
            emit("machine: \(MachineFacts.summary)")
            emit("pre-loading \(events) events into \(partitions) partitions per topic ...")
            let names = BenchRunNames()
            emit("topics \(names.interactions), \(names.impressions); Redis keys under \(names.keyPrefix)")
            let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: services.brokers))
            try admin.createTopics([NewTopic(name: names.interactions, partitions: partitions),
                                    NewTopic(name: names.impressions, partitions: partitions)])
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let config = SyntheticConfig(seed: 11, users: users, items: items, startMs: now - 86_400_000, spanMs: 86_400_000, nowMs: now)
            let publisher = try EventPublisher(brokers: services.brokers, interactionsTopic: names.interactions,
                                               impressionsTopic: names.impressions, rate: 0, randomKeys: false)
            let loadStart = Date()
            let loaded = try publisher.publish(SyntheticStream(config: config, count: events).lazy.map { ($0.topic == .impressions, $0.key, $0.json) })
            emit(String(format: "pre-loaded %d events in %.1f s", loaded, Date().timeIntervalSince(loadStart)))

            let brokerBeforeDrain = services.serviceCPUSeconds().broker
            let drain = try DrainBenchmark.run(brokers: services.brokers, topics: [names.interactions, names.impressions])
            let drainRate = Double(drain.records) / drain.seconds
            var drainBroker = ""
            if let before = brokerBeforeDrain, let after = services.serviceCPUSeconds().broker {
                drainBroker = String(format: "; broker CPU %.1f s", after - before)
            }
            emit(String(format: "librdkafka raw drain: %d records in %.2f s = %.0f records/s", drain.records, drain.seconds, drainRate) + drainBroker)

            let variants: [(String, Int64, Bool, Bool)] = [
                ("features, checkpoints on (5 s)", 5_000, false, false),
                ("features, checkpoints off", 0, false, false),
                ("features + embeddings (co-occurrence, dim 64), examples topic off, checkpoints on", 5_000, true, false),
                ("features + embeddings + examples topic (default topology), checkpoints on", 5_000, true, true),
            ]
            let drifts: [Int64?] = maxDrift.isEmpty ? [nil] : maxDrift.compactMap { parseMaxDrift($0) }
            // Events/s of each run, in round order.
            var rates: [VariantRun: [Double]] = [:]
            for round in 1...rounds {
            if rounds > 1 { emit("round \(round) of \(rounds)") }
            for (number, (label, interval, embeddings, examples)) in zip(1..., variants)
            where (embeddings ? withEmbeddings : true) && (examples ? withExamples : true) && (only.isEmpty || only.contains(number)) {
            for drift in drifts {
                var topology = Topology()
                // One round: the variants share the keys, as they always did
                // (the embeddings' run finds the features' hashes). More:
                // each run its own keys, deleted after it.
                let runPrefix = rounds > 1 ? "\(names.keyPrefix)r\(round)v\(number):" : nil
                names.apply(to: &topology, keyPrefix: runPrefix)
                topology.eventTime.maxDriftMs = drift
                topology.checkpointIntervalMs = interval
                topology.embeddings.enabled = embeddings
                topology.embeddings.examples = examples
                topology.admin.port = -1
                topology.progressIntervalMs = 0
                for property in kafkaProperties {
                    let parts = property.split(separator: "=", maxSplits: 1)
                    topology.kafka[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
                }
                let group = "bench-\(interval)-\(UUID().uuidString.prefix(6))"
                let options = ProcessorOptions(brokers: services.brokers, redisTarget: try RedisTarget(url: services.redisURL),
                                               group: group, stopAtEnd: true)
                var logger = Logger(label: "freshet.bench")
                logger.logLevel = try parseLogLevel(logLevel)
                let processor = StreamProcessor(topology: topology, options: options, logger: logger)
                PeakMemory.reset()
                let residentAtStart = PeakMemory.currentBytes()
                let cpuBefore = CPUClock.processSeconds()
                let servicesBefore = services.serviceCPUSeconds()
                let started = Date()
                try processor.run()
                let seconds = Date().timeIntervalSince(started)
                let cpu = CPUClock.processSeconds() - cpuBefore
                let servicesAfter = services.serviceCPUSeconds()
                let rate = Double(loaded) / seconds
                let alignment = topology.alignmentMaxDriftMs.map { "max drift \(DurationParser.describe($0)), \(processor.alignmentPauseCount) pauses" } ?? "alignment off"
                emit(String(format: "freshet end to end, %@ (%@): %d events in %.2f s = %.0f events/s (%.0f%% of raw drain); process CPU %.1f s = %.0f events/s per core-second; peak RSS %.0f MiB (%.0f MiB at start)",
                             label, alignment, loaded, seconds, rate, 100 * rate / drainRate, cpu, Double(loaded) / cpu,
                             Double(PeakMemory.peakBytes()) / 1_048_576, Double(residentAtStart) / 1_048_576))
                if let joinedAt = processor.stats.firstJoinedAt {
                    // The wall time above includes the group's first join; say how
                    // much of it that was, and the rate after it (not a new target:
                    // the figures above stay the ones compared between builds).
                    let joinWait = joinedAt.timeIntervalSince(started)
                    emit(String(format: "  of which %.2f s until the group's first assignment (the broker's initial rebalance delay); after it %.0f events/s",
                                joinWait, Double(loaded) / max(seconds - joinWait, 1e-9)))
                }
                if let brokerBefore = servicesBefore.broker, let brokerAfter = servicesAfter.broker,
                   let redisBefore = servicesBefore.redis, let redisAfter = servicesAfter.redis {
                    emit(String(format: "  same interval: broker CPU %.1f s, Redis CPU %.1f s", brokerAfter - brokerBefore, redisAfter - redisBefore))
                }
                if let summary = processor.embeddingSummary { emit("  embeddings: \(summary)") }
                rates[VariantRun(number: number, drift: drift), default: []].append(rate)
                if let runPrefix { try deleteRedisKeys(prefix: runPrefix, redisURL: services.redisURL) }
            }
            }
            }
            if rounds > 1 { emit(Self.roundsSummary(rates, variants: variants.map(\.0))) }
        }

        /// One measured configuration: a variant (1-4) at a watermark alignment (nil: the topology's).
        struct VariantRun: Hashable, Comparable {
            let number: Int
            let drift: Int64?
            static func < (a: Self, b: Self) -> Bool { (a.drift ?? -1, a.number) < (b.drift ?? -1, b.number) }
        }

        /// Each variant's median events/s over the rounds (every run's in
        /// round order) and, with variants 1 and 3, the median share.
        static func roundsSummary(_ rates: [VariantRun: [Double]], variants: [String]) -> String {
            func median(_ values: [Double]) -> Double {
                let sorted = values.sorted()
                return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            }
            var lines: [String] = []
            for run in rates.keys.sorted() {
                guard let values = rates[run] else { continue }
                lines.append(String(format: "  %@%@: median %.0f events/s (runs: %@)", variants[run.number - 1],
                                    run.drift.map { " (max drift \($0) ms)" } ?? "", median(values),
                                    values.map { String(format: "%.0f", $0) }.joined(separator: ", ")))
            }
            for drift in Set(rates.keys.map(\.drift)).sorted(by: { ($0 ?? -1) < ($1 ?? -1) }) {
                guard let features = rates[VariantRun(number: 1, drift: drift)], let embeddings = rates[VariantRun(number: 3, drift: drift)],
                      features.count == embeddings.count else { continue }
                let shares = zip(embeddings, features).map { $0 / $1 }
                lines.append(String(format: "  embeddings' share (variant 3 / variant 1, same round): median %.2f (rounds: %@)",
                                    median(shares), shares.map { String(format: "%.2f", $0) }.joined(separator: ", ")))
            }
            return "over \(rates.values.first?.count ?? 0) rounds:\n" + lines.joined(separator: "\n")
        }
    }

    struct Freshness: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "freshness",
            abstract: "Steady load at a given rate; p50/p90/p99/p99.9/max from an event's production to its feature being acknowledged by Redis.")

        @OptionGroup var cluster: BenchClusterOptions
        @Option(help: "Events per second (use about half of the end-to-end maximum).") var rate = 50_000
        @Option(help: "Seconds of load.") var seconds = 30
        @Option(help: "Probe interactions for embedding freshness (new users, polled in Redis).") var probes = 20
        @Flag(inversion: .prefixedNo, help: "Train embeddings (the default topology does).") var embeddings = true
        @Option(help: "Checkpoint interval in ms (0 disables).") var checkpointMs: Int64 = 5_000

        func run() throws {
            let services = try cluster.start("freshness")
            defer { services.stop() }
            var topology = Topology()
            let names = BenchRunNames()
            names.apply(to: &topology)
            topology.admin.port = -1
            topology.progressIntervalMs = 0
            topology.embeddings.enabled = embeddings
            topology.checkpointIntervalMs = checkpointMs
            let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: services.brokers))
            try admin.createTopics([NewTopic(name: names.interactions, partitions: 4), NewTopic(name: names.impressions, partitions: 4)])
            var logger = Logger(label: "freshet.bench")
            logger.logLevel = .warning
            let processor = StreamProcessor(topology: topology,
                                            options: ProcessorOptions(brokers: services.brokers, redis: try RedisEndpoint(url: services.redisURL),
                                                                      group: "freshness"),
                                            logger: logger)
            processor.stats.keepFreshness(true)
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                do { try processor.run() } catch { emit("processor: \(error)") }
                done.signal()
            }
            thread.start()
            Thread.sleep(forTimeInterval: 8)  // join the group and get assigned
            _ = processor.stats.takeFreshness()
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let events = rate * seconds
            let config = SyntheticConfig(seed: 5, users: 100_000, items: 10_000, startMs: now, spanMs: Int64(seconds) * 1000, nowMs: now + 86_400_000)
            let publisher = try EventPublisher(brokers: services.brokers, interactionsTopic: names.interactions,
                                               impressionsTopic: names.impressions, rate: rate, randomKeys: false)
            let probe = EmbeddingProbe(brokers: services.brokers, redisURL: services.redisURL,
                                       field: topology.embeddings.fieldName, probes: probes,
                                       topic: names.interactions, userKeyPrefix: "\(names.keyPrefix)user:")
            let probeThread = Thread { probe.run() }
            let probing = topology.embeddings.enabled && probes > 0
            if probing { probeThread.start() }
            let sent = try publisher.publish(SyntheticStream(config: config, count: events).lazy.map { ($0.topic == .impressions, $0.key, $0.json) })
            if probing { probe.waitUntilDone() }
            Thread.sleep(forTimeInterval: 3)
            processor.requestStop()
            done.wait()
            let freshness = processor.stats.takeFreshness()
            emit("feature freshness at \(rate) events/s (\(sent) sent, \(freshness.count) samples), event to Redis acknowledgement: \(freshness.summary())")
            if probe.latencies.count > 0 {
                emit(String(format: "embedding freshness (sync interval %.0f s), interaction to user vector visible in Redis, %d probes: ",
                            Double(topology.embeddings.syncIntervalMs) / 1000, probe.latencies.count) + probe.latencies.summary(unit: .seconds))
            }
        }
    }

    struct Core: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "core", abstract: "The dataflow core alone, no I/O: parsing, then parsing plus every feature operator, one thread.")
        @Option var events = 2_000_000
        @Option var users = 100_000
        @Option var items = 10_000
        @Option(help: "Run only these phases (decode, pipeline, source, item; repeatable), e.g. to profile one. Default: all.")
        var phase: [String] = []
        func run() throws {
            var phases = Set(CoreBenchmarkPhase.allCases)
            if !phase.isEmpty {
                phases = try Set(phase.map { name in
                    guard let p = CoreBenchmarkPhase(rawValue: name) else {
                        throw ValidationError("unknown phase '\(name)' (decode, pipeline, source, item)")
                    }
                    return p
                })
            }
            emit("machine: \(MachineFacts.summary)")
            emit("\(CoreBenchmark.run(events: events, users: users, items: items, seed: 3, phases: phases))")
        }
    }

    struct Tasks: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tasks",
            abstract: "The task layer alone, in process (no broker, no Redis, one thread): CPU per event of each stage, for the features-only and the default topology.")
        @Option var events = 600_000
        @Option var users = 60_000
        @Option var items = 20_000
        @Option(help: "Partitions per source and repartition topic.") var partitions: Int32 = 4
        @Option(help: "Run only these variants (1: features only, 2: default topology: embeddings + examples topic + counts stage; repeatable). Default: both.")
        var only: [Int] = []
        @Option(help: "The wall clock the input is generated against, ms since the epoch (default: now). Pinned, two runs (or two builds) get the same events, so their examples' digests compare.")
        var nowMs: Int64?
        func run() throws {
            guard partitions > 0 else { throw ValidationError("--partitions must be at least 1") }
            emit("machine: \(MachineFacts.summary)")
            let now = nowMs ?? Int64(Date().timeIntervalSince1970 * 1000)
            let config = SyntheticConfig(seed: 11, users: users, items: items, startMs: now - 86_400_000, spanMs: 86_400_000, nowMs: now)
            let variants: [(String, Bool)] = [("features only", false), ("default topology (embeddings + examples + counts stage)", true)]
            for (number, (label, examples)) in zip(1..., variants) where only.isEmpty || only.contains(number) {
                var topology = Topology()
                topology.embeddings.enabled = examples
                topology.embeddings.examples = examples
                let stream = SyntheticStream(config: config, count: events).lazy.map { (isImpression: $0.topic == .impressions, key: $0.key, json: $0.json) }
                emit("\(TaskBenchmark.run(stream, label: label, topology: topology, partitions: partitions, nowMs: now))")
            }
        }
    }

    struct Memory: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "memory", abstract: "Memory per user key and per item key.")
        @Option var users = 1_000_000
        @Option var items = 100_000
        func run() throws {
            emit("\(CoreBenchmark.memory(users: users, items: items))")
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "restore", abstract: "Restore time of a task holding many user keys.")
        @OptionGroup var cluster: BenchClusterOptions
        @Option var users = 1_000_000
        func run() throws {
            let services = try cluster.start("restore")
            defer { services.stop() }
            emit("\(try RestoreBenchmark.run(redisURL: services.redisURL, users: users))")
        }
    }

    struct RedisPipelines: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "redis", abstract: "Pipelined HSET throughput on one connection.")
        @OptionGroup var cluster: BenchClusterOptions
        func run() throws {
            let services = try cluster.start("redis")
            defer { services.stop() }
            emit("\(try RedisBenchmark.run(endpoint: try RedisEndpoint(url: services.redisURL)))")
        }
    }

    struct Embeddings: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "embeddings", abstract: "Co-occurrence counting per second per core (the learner of `freshet run`); BPR examples trained per second per core, and memory per row.")
        @Option var examples = 200_000
        @Option var negatives = 4
        @Option(help: "Positives for the co-occurrence counting figure.") var positives = 1_000_000
        @Flag(help: "Only the co-occurrence counting figure (the learner in `freshet run`), not the BPR trainer's.")
        var countingOnly = false
        func run() throws {
            for dim in [64, 128] where !countingOnly {
                let report = EmbeddingBenchmark.run(dim: dim, negatives: negatives, examples: examples)
                emit(String(format: "embeddings: dimension %d, %d negatives, %@ loss: %.0f examples/s on one core, %d bytes per row",
                            report.dimension, report.negatives, report.loss.rawValue, report.examplesPerSecond, report.bytesPerRow))
            }
            emit("\(CooccurrenceCountingBenchmark.run(positives: positives))")
        }
    }
}

extension BenchCommand {
    /// Spectral refresh time on a synthetic co-occurrence matrix (rows of
    /// `entries` neighbours drawn by a power law, as the bounded rows hold).
    struct Refresh: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "refresh", abstract: "Spectral refresh time (cold and warm) at a given number of items.")
        @Option var items = [100_000]
        @Option var entries = 100
        @Option var dimension = 64
        @Option(help: "Subspace iterations of the final refresh (the topology's `final_iterations`).")
        var finalIterations = Topology.Embeddings.defaultFinalIterations
        @Flag(help: "Name the items by a hash of their number, so the order of their ids says nothing of their popularity (as with real ids); by default the popular items' names are short and sort together.")
        var hashedIds = false
        func run() throws {
            SpectralRefresh.useOneBLASThread()
            for n in items {
                var rng = SplitMix64(seed: 5)
                var builder = CooccurrenceSnapshot.Builder()
                let ids = (0..<n).map { hashedIds ? ByteId(String(StableHash.of(Array("i\($0)".utf8)), radix: 16)) : ByteId("i\($0)") }
                for i in 0..<n {
                    var row: [(ByteId, UInt32)] = []
                    var seen: Set<Int> = [i]
                    // Neighbours: half near i (a "topic" of 500 ids), half by a power law over all ids.
                    while row.count < entries {
                        let j = row.count % 2 == 0 ? (i / 500) * 500 + Int(rng.nextInt(500)) : Int(Double(n) * pow(rng.nextUnit(), 3))
                        guard j < n, seen.insert(j).inserted else { continue }
                        row.append((ids[j], UInt32(1 + rng.nextInt(20))))
                    }
                    builder.addRow(item: ids[i], degree: Int64(50 + rng.nextInt(1000)), entries: row)
                }
                let t0 = Date()
                let matrix = SymmetricSparseMatrix(builder.snapshot)
                let build = Date().timeIntervalSince(t0)
                // One sparse product (the refresh's inner step, bound by reading
                // neighbours' rows of the block): the fastest of five, one thread.
                let block = (0..<(n * dimension)).map { Float(($0 &* 2_654_435_761) % 1_000) / 1_000 }
                var productSeconds = Double.infinity
                for _ in 0..<5 {
                    let t = Date()
                    _ = matrix.multiply(block, k: dimension)
                    productSeconds = min(productSeconds, Date().timeIntervalSince(t))
                }
                let t1 = Date()
                let cold = SpectralRefresh.refresh(matrix, dimension: dimension, previous: nil, iterations: 8, seed: 1)
                let coldSeconds = Date().timeIntervalSince(t1)
                let t2 = Date()
                _ = SpectralRefresh.refresh(matrix, dimension: dimension, previous: cold, iterations: 2, seed: 1)
                let warmSeconds = Date().timeIntervalSince(t2)
                // The end of a bounded run: cold (the final vectors are a function of the final rows
                // alone), the topology's default iterations, on the refresher's final threads.
                let t3 = Date()
                _ = SpectralRefresh.refresh(matrix, dimension: dimension, previous: nil, iterations: finalIterations,
                                            seed: 1, threads: SpectralRefresh.finalThreads)
                let finalSeconds = Date().timeIntervalSince(t3)
                emit(String(format: "refresh: %d items, %d non-zeros, dim %d: matrix build %.2f s; one sparse product %.0f ms; cold (8 iterations) %.2f s; warm (2 iterations, the mid-run refresh) %.2f s; final (%d iterations, cold, %d threads: the end of a bounded run) %.2f s; peak RSS %.0f MiB",
                            n, matrix.values.count, dimension, build, productSeconds * 1_000, coldSeconds, warmSeconds,
                            finalIterations, SpectralRefresh.finalThreads, finalSeconds, Double(PeakMemory.peakBytes()) / 1_048_576))
            }
        }
    }
}

/// Peak resident memory of this process (Linux VmHWM), resettable between measurements.
enum PeakMemory {
    /// Resets VmHWM to the current RSS (writes 5 to /proc/self/clear_refs; Linux >= 4.0).
    /// First hands the heap that earlier phases freed back to the kernel
    /// (glibc's `malloc_trim`): a benchmark's pre-loading and raw drain run in
    /// the same process, and what glibc kept of them would otherwise count
    /// towards the next measurement's peak (it did: 93-241 MiB resident at the
    /// start of the features-only run, varying from run to run), which a
    /// `freshet run` of its own does not carry.
    static func reset() {
        trimHeap()
        if let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
            handle.write(Data("5".utf8))
            try? handle.close()
        }
    }

    /// glibc's `malloc_trim(0)`, looked up at run time (Swift's Glibc module
    /// does not declare it; elsewhere, or without it, nothing happens).
    private static func trimHeap() {
        #if os(Linux)
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(nil, "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
        #endif
    }

    static func peakBytes() -> Int { statusBytes("VmHWM:") }

    /// The resident memory now (VmRSS).
    static func currentBytes() -> Int { statusBytes("VmRSS:") }

    private static func statusBytes(_ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            let digits = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return digits * 1024
        }
        return 0
    }
}

/// Measures how long a new interaction takes to show up as a user vector in
/// Redis: sends one interaction for a never-seen user, polls the user's hash.
final class EmbeddingProbe: @unchecked Sendable {
    // `latencies` is written by the probe thread and read after `waitUntilDone`.
    private(set) var latencies = LatencyHistogram()
    private let done = DispatchSemaphore(value: 0)
    let brokers: String, redisURL: String, field: String, probes: Int
    /// The run's interactions topic, and its users' Redis key prefix.
    let topic: String, userKeyPrefix: String

    init(brokers: String, redisURL: String, field: String, probes: Int, topic: String, userKeyPrefix: String) {
        self.brokers = brokers; self.redisURL = redisURL; self.field = field; self.probes = probes
        self.topic = topic; self.userKeyPrefix = userKeyPrefix
    }

    func waitUntilDone() { if probes > 0 { done.wait() } }

    func run() {
        defer { done.signal() }
        do {
            let producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: brokers, properties: ["linger.ms": "0"]))
            let redis = try RedisConnection(url: redisURL)
            for index in 0..<probes {
                let user = "probe-\(UUID().uuidString.prefix(8))-\(index)"
                let sentAt = Date()
                let ts = Int64(sentAt.timeIntervalSince1970 * 1000)
                let json = #"{"user_id":"\#(user)","item_id":"i1","action":"click","ts":\#(ts)}"#
                try producer.produce(topic: topic, key: Array(user.utf8), value: Array(json.utf8))
                try producer.flush(timeoutMs: 5_000)
                while Date().timeIntervalSince(sentAt) < 60 {
                    if try redis.command(["HEXISTS", "\(userKeyPrefix)\(user)", field]).int == 1 {
                        latencies.record(seconds: Date().timeIntervalSince(sentAt))
                        break
                    }
                    usleep(20_000)
                }
                usleep(300_000)
            }
        } catch {
            emit("embedding probe: \(error)")
        }
    }
}

/// Facts about the machine a benchmark ran on.
enum MachineFacts {
    static var summary: String {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let memory = Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824
        var cpu = "unknown CPU"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let name = line.split(separator: ":").last {
            cpu = name.trimmingCharacters(in: .whitespaces)
        }
        return String(format: "%@, %d cores, %.0f GiB", cpu, cores, memory)
    }
}

/// `--log-level`: one of swift-log's level names.
/// - Throws: `ValidationError` naming the accepted levels.
func parseLogLevel(_ text: String) throws -> Logger.Level {
    guard let level = Logger.Level(rawValue: text) else {
        throw ValidationError("--log-level \(text): expected one of " + Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))
    }
    return level
}

/// `--max-drift`: a duration, or `off` (0). Nil when neither.
func parseMaxDrift(_ text: String) -> Int64?? {
    if ["off", "false", "no"].contains(text.lowercased()) { return .some(0) }
    return DurationParser.milliseconds(text).map { .some($0) }
}

/// Says on standard error, before anything talks to Kafka, that the loaded
/// librdkafka cannot talk to current brokers (`LibrdkafkaVersion.tooOldWarning`).
func warnIfLibrdkafkaIsTooOld() {
    guard let warning = LibrdkafkaVersion.tooOldWarning else { return }
    FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
}
