import Foundation
import FreshetKafka
import FreshetRedis
import FreshetRuntime
import Logging

/// Runs real `StreamProcessor`s in process, on an `InMemoryCluster` and a
/// manual clock (Kafka Streams' TopologyTestDriver, for the whole engine):
/// the processing loop, task manager, checkpointer, rebalance callbacks,
/// fencing and store-loss handling are the production code; only the
/// servers are in memory. One test thread steps every processor's loop
/// (`StreamProcessor.step`), advancing the clock by `stepMs` per step, and
/// decides between which two polls a rebalance, a lost partition or a crash
/// happens, so such a test runs in milliseconds and is deterministic (the
/// Redis writer keeps its own thread; each checkpoint waits for it).
///
/// Not covered: the librdkafka and hiredis clients themselves, timing
/// (session timeouts, back-off), embeddings (their refresher reads Redis
/// directly) and a Redis Cluster.
package final class EngineDriver {
    package let cluster = InMemoryCluster()
    package let clock: ManualClock
    package let topology: Topology
    package let group: String
    /// Clock advance per step, ms.
    package var stepMs: Int64
    package private(set) var instances: [Instance] = []
    /// Writes refused by their epoch check, summed over every instance started.
    package var fencedRefusals: Int { instances.reduce(0) { $0 + $1.processor.refusedWriteCount } }
    let logger: Logger

    /// One processor and its group member.
    package final class Instance {
        package let processor: StreamProcessor
        package let consumer: InMemoryConsumer
        package let name: String
        /// False once its loop returned false, it was finished, or it crashed.
        package fileprivate(set) var running = true
        /// True once `finish` ran (or it crashed).
        package fileprivate(set) var finished = false
        package fileprivate(set) var steps = 0

        init(processor: StreamProcessor, consumer: InMemoryConsumer, name: String) {
            self.processor = processor
            self.consumer = consumer
            self.name = name
        }
    }

    /// - Parameters:
    ///   - topology: the processors' topology; the admin server, the
    ///     progress line and embeddings are turned off (the embedding
    ///     refresher talks to Redis through its own clients, not `EngineConnections`).
    ///   - startMs: the clock's start, ms since the epoch.
    ///   - stepMs: clock advance per step (the flush, marker and checkpoint
    ///     intervals count in steps of it).
    package init(topology: Topology = Topology(), group: String = "driver",
                 startMs: Int64 = 1_767_225_600_000, stepMs: Int64 = 10) {
        var topology = topology
        topology.admin.port = -1
        topology.progressIntervalMs = 0
        topology.embeddings.enabled = false
        self.topology = topology
        self.group = group
        self.clock = ManualClock(nowMs: startMs)
        self.stepMs = stepMs
        var logger = Logger(label: "freshet.engine-driver", factory: { label in
            // Quiet unless FRESHET_DRIVER_LOG is set (then the engine's log goes to stderr).
            ProcessInfo.processInfo.environment["FRESHET_DRIVER_LOG"] == nil
                ? SwiftLogNoOpLogHandler() as any LogHandler : StreamLogHandler.standardError(label: label)
        })
        logger.logLevel = .info
        self.logger = logger
        let clock = self.clock
        kafka.clock = { clock.nowMs }
    }

    package var kafka: InMemoryKafka { cluster.kafka }
    package var redis: InMemoryRedis { cluster.redis }

    /// Creates the source topics (before producing to them).
    package func createSourceTopics(partitions: Int32) {
        kafka.createTopic(topology.sources.interactions, partitions: partitions)
        kafka.createTopic(topology.sources.impressions, partitions: partitions)
    }

    /// Starts a processor (topics, clients, no partitions yet: assign them
    /// with `assign`, or `assignEverything`).
    /// - Parameter stopAtEnd: a bounded run (`--stop-at-end`): its loop ends
    ///   once every partition it holds reached its end.
    /// - Parameter topology: this instance's own topology (default: the
    ///   driver's), with the same parts turned off as the driver's.
    @discardableResult
    package func startInstance(stopAtEnd: Bool = true, topology own: Topology? = nil) throws -> Instance {
        var topology = own ?? self.topology
        topology.admin.port = -1
        topology.progressIntervalMs = 0
        topology.embeddings.enabled = false
        let options = ProcessorOptions(brokers: "in-memory", redis: RedisEndpoint(host: "in-memory"), group: group,
                                       stopAtEnd: stopAtEnd)
        var made: InMemoryConsumer?
        cluster.consumerMade = { made = $0 }
        defer { cluster.consumerMade = nil }
        let clock = self.clock
        let name = "instance-\(instances.count)"
        let processor = StreamProcessor(topology: topology, options: options,
                                        logger: logger.with(instance: name),
                                        connections: cluster, clock: { clock.nowMs })
        try processor.start()
        guard let consumer = made else { throw TestFailure("the processor made no consumer") }
        let instance = Instance(processor: processor, consumer: consumer, name: name)
        instances.append(instance)
        return instance
    }

    /// Every partition the processors subscribe to (sources and repartition topics), sorted.
    package var subscribedPartitions: [TopicPartition] {
        guard let consumer = instances.first?.consumer else { return [] }
        return consumer.topics.flatMap { kafka.partitions(of: $0) }.sorted()
    }

    /// Gives every subscribed partition to `instance`.
    package func assignEverything(to instance: Instance) {
        kafka.assign(subscribedPartitions, to: instance.consumer)
    }

    /// Advances the clock by `stepMs` and runs one turn of the instance's
    /// loop. When the loop ends (a bounded run completed), the instance is
    /// finished at once, as `run` does: it checkpoints, commits and leaves
    /// the group, whose other members get its partitions.
    /// - Returns: whether the loop goes on.
    /// - Throws: the loop's fatal error (the processor then stopped as `run`
    ///   stops it), or what `finish` throws.
    @discardableResult
    package func step(_ instance: Instance) throws -> Bool {
        guard instance.running else { return false }
        clock.advance(by: stepMs)
        instance.steps += 1
        let goesOn: Bool
        do {
            goesOn = try instance.processor.step()
        } catch {
            instance.running = false
            instance.finished = true
            instance.processor.stopOnFatalError(error)
            throw error
        }
        if !goesOn { try finish(instance) }
        return goesOn
    }

    /// Steps the running instances in turn, `rounds` times (or until none runs).
    package func run(rounds: Int) throws {
        for _ in 0..<rounds {
            let running = instances.filter(\.running)
            guard !running.isEmpty else { return }
            for instance in running { try step(instance) }
        }
    }

    /// Steps the running instances in turn until `condition` holds.
    /// - Throws: `TestFailure` after `maxRounds` rounds without it.
    package func run(until condition: () -> Bool, maxRounds: Int = 5_000, _ what: String) throws {
        for _ in 0..<maxRounds {
            if condition() { return }
            let running = instances.filter(\.running)
            guard !running.isEmpty else { break }
            for instance in running { try step(instance) }
        }
        if !condition() { throw TestFailure("\(what): not reached after \(maxRounds) rounds") }
    }

    /// Steps every instance until each bounded run completed (each is
    /// finished as its loop ends).
    package func runToCompletion(maxRounds: Int = 5_000) throws {
        try run(until: { instances.allSatisfy { !$0.running } }, maxRounds: maxRounds, "every bounded run complete")
    }

    /// Stops an instance gracefully (`StreamProcessor.finish`: flush,
    /// checkpoint, commit, leave the group). Idempotent.
    package func finish(_ instance: Instance) throws {
        instance.running = false
        guard !instance.finished else { return }
        instance.finished = true
        try instance.processor.finish()
    }

    /// A crash: the processor stops without a flush, a checkpoint, a commit
    /// or leaving the group (features already handed to its Redis writer
    /// land, as they would have before the process died); after the session
    /// timeout its partitions go to `reassignTo` (nil: to nobody yet).
    /// Returns the partitions it held.
    @discardableResult
    package func crash(_ instance: Instance, reassignTo: Instance?) -> [TopicPartition] {
        instance.running = false
        instance.finished = true
        instance.processor.abandon()
        return kafka.crashed(instance.consumer, reassignTo: reassignTo?.consumer)
    }

    /// The task ids an instance owns, as strings (`interactions-0`, ...).
    package func tasks(of instance: Instance) -> [String] {
        instance.processor.stats.tasks.snapshot.tasks.map(\.task).sorted()
    }
}

/// A wall clock a test moves by hand. Sendable: the Redis writer thread may read it.
package final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64

    package init(nowMs: Int64) { value = nowMs }

    package var nowMs: Int64 {
        lock.lock(); defer { lock.unlock() }
        return value
    }

    package func advance(by ms: Int64) {
        lock.lock(); value += ms; lock.unlock()
    }
}

extension Logger {
    func with(instance: String) -> Logger {
        var copy = self
        copy[metadataKey: "instance"] = "\(instance)"
        return copy
    }
}
