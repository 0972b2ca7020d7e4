import FreshetCore
import FreshetFeatures
import FreshetKafka
@testable import FreshetRuntime

/// Runs the task layer in process, without servers (the idea of Kafka
/// Streams' TopologyTestDriver): an injected clock, in-memory partition logs
/// standing in for the broker (sources and repartition topics, partitioned
/// as the producer does), and an in-memory checkpoint store. Tasks are made
/// by the engine's `TaskFactory` and driven only through `StreamTask`, so a
/// crash (drop a task, restore it from its last checkpoint, replay its input
/// from the checkpointed offset) runs in microseconds.
///
/// Single-threaded; not the engine loop itself (no consumer, no Redis
/// writer): what it covers is the task contract and the dataflow between tasks.
final class TaskDriver {
    /// The injected wall clock, ms.
    var nowMs: Int64
    let factory: TaskFactory
    let repartitionPartitions: Int32
    private(set) var tasks: [TaskId: any StreamTask] = [:]
    /// Each task's input partition (the "broker"), append-only.
    private(set) var logs: [TaskId: [InputRecord]] = [:]
    /// Where each task's consumer reads next (an index into its log).
    private var positions: [TaskId: Int] = [:]
    /// The checkpoint store: meta fields and the state hash per task.
    private var checkpoints: [TaskId: (meta: [String: [UInt8]], state: [String: [UInt8]])] = [:]
    private lazy var output = Output(driver: self)
    var deadLetters: [(topic: String, record: InputRecord, reason: BadInput)] { output.deadLetters }
    /// Every message written to the examples topic, in order (`ExampleCodec` encoding).
    var examples: [[UInt8]] { output.examples }

    /// Tasks for `sources` (source stage → partition count) and every
    /// repartition-fed stage the topology needs.
    /// - Parameter itemEmbeddings: item tasks get an `ItemEmbeddingSide` (the
    ///   joiner; examples land in `examples`) from `topology.embeddings`.
    init(topology: Topology = Topology(), interactionPartitions: Int32, impressionPartitions: Int32,
         repartitionPartitions: Int32, nowMs: Int64, itemEmbeddings: Bool = false) {
        self.nowMs = nowMs
        self.repartitionPartitions = repartitionPartitions
        let settings = topology.embeddings
        self.factory = TaskFactory(topology: topology, stopAtEnd: false, decoder: EventDecoder(), panes: PaneSpec(),
                                   trending: TrendingDecay(), interactionPartitions: interactionPartitions,
                                   impressionPartitions: impressionPartitions, repartitionPartitions: repartitionPartitions,
                                   makeUserEmbeddingSide: { nil },
                                   makeItemEmbeddingSide: {
                                       itemEmbeddings ? ItemEmbeddingSide(settings: settings, counts: InteractionCountView()) : nil
                                   })
        var ids: [TaskId] = []
        ids += (0..<interactionPartitions).map { TaskId(stage: .interactions, partition: $0) }
        ids += (0..<impressionPartitions).map { TaskId(stage: .impressions, partition: $0) }
        ids += (0..<repartitionPartitions).map { TaskId(stage: .items, partition: $0) }
        if !topology.sources.keyedByUser {
            ids += (0..<repartitionPartitions).map { TaskId(stage: .users, partition: $0) }
        }
        if topology.routesExamplesThroughCounts {
            ids += (0..<repartitionPartitions).map { TaskId(stage: .counts, partition: $0) }
        }
        for id in ids {
            logs[id] = []
            start(id)
        }
    }

    private func start(_ id: TaskId) {
        tasks[id] = factory.make(id, topic: id.stage.rawValue, nowMs: nowMs)
        positions[id] = 0
    }

    /// Appends a record to a source partition's log.
    func send(_ stage: TaskId.Stage, partition: Int32, _ value: [UInt8]) {
        append(TaskId(stage: stage, partition: partition), value)
    }

    fileprivate func append(_ id: TaskId, _ value: [UInt8]) {
        let offset = Int64(logs[id, default: []].count)
        logs[id, default: []].append(InputRecord(partition: id.partition, offset: offset, key: nil, value: value, timestampMs: nil))
    }

    /// Feeds every task its unread records, then one time tick (markers due),
    /// in stage order, until no log has anything unread.
    func runUntilQuiet() {
        var progressed = true
        while progressed {
            progressed = false
            for id in tasks.keys.sorted(by: Self.order) {
                guard let task = tasks[id], let log = logs[id], var position = positions[id] else { continue }
                while position < log.count {
                    task.process(log[position], nowMs: nowMs, output: output)
                    position += 1
                    progressed = true
                }
                positions[id] = position
                task.advanceTime(TimeTick(nowMs: nowMs, markersDue: true, finalMarkersDue: false), output: output)
            }
        }
    }

    /// Bounded end: every source partition reached its end.
    func finishSources() {
        for (id, task) in tasks where id.stage.readsSourceTopic { _ = task.reachEnd(output: output) }
        runUntilQuiet()
    }

    /// Bounded end of one source partition only (the others keep reading).
    func finish(_ id: TaskId) {
        _ = tasks[id]?.reachEnd(output: output)
    }

    /// Feeds one task its unread records and a time tick (the other tasks
    /// wait); `finalMarkersDue`: the tick of a bounded run's marker resend.
    func run(_ id: TaskId, finalMarkersDue: Bool = false) {
        guard let task = tasks[id], let log = logs[id], var position = positions[id] else { return }
        while position < log.count {
            task.process(log[position], nowMs: nowMs, output: output)
            position += 1
        }
        positions[id] = position
        task.advanceTime(TimeTick(nowMs: nowMs, markersDue: true, finalMarkersDue: finalMarkersDue), output: output)
    }

    /// Checkpoints the tasks `which` selects (default all) through `snapshot()`
    /// (state hashes accumulate, as in Redis).
    func checkpoint(_ which: (TaskId) -> Bool = { _ in true }) throws {
        for (id, task) in tasks where which(id) {
            let snapshot = task.snapshot()
            guard !snapshot.isEmpty else { continue }
            var entry = checkpoints[id] ?? (meta: [:], state: [:])
            var writer = ByteWriter(capacity: 256)
            for slot in snapshot.changed {
                writer.bytes.removeAll(keepingCapacity: true)
                let key = snapshot.encode(slot, &writer)
                entry.state[key] = writer.bytes
            }
            entry.meta = Dictionary(uniqueKeysWithValues: snapshot.meta.fields())
            checkpoints[id] = entry
        }
    }

    /// Kills a task: its state is gone; a new one is restored from the last
    /// checkpoint and reads its log again from the checkpointed offset.
    func crash(_ id: TaskId) throws {
        start(id)
        guard let task = tasks[id], let saved = checkpoints[id] else { return }
        let checkpoint = try TaskCheckpoint.parse(saved.meta, task: id)
        try task.restore(from: checkpoint, state: { apply in
            for (key, bytes) in saved.state { try apply(key, bytes) }
        }, nowMs: nowMs)
        positions[id] = Int(checkpoint.nextOffset ?? 0)
    }

    func crashAll() throws {
        for id in Array(tasks.keys) { try crash(id) }
    }

    /// The item task that owns `item` (as the producer partitions it).
    func itemFeatures(_ item: String) -> ItemFeatures? {
        let partition = KafkaProducer.partition(forKey: Array(item.utf8), partitionCount: repartitionPartitions)
        return (tasks[TaskId(stage: .items, partition: partition)] as? ItemTask)?.store.features(of: item)
    }

    /// A user's features from whichever task keeps them.
    func userFeatures(_ user: String) -> UserFeatures? {
        for task in tasks.values {
            if let source = task as? SourceTask, let features = source.users?.features(of: user) { return features }
            if let users = task as? UserTask, let features = users.users.features(of: user) { return features }
        }
        return nil
    }

    private static func order(_ a: TaskId, _ b: TaskId) -> Bool {
        let (ra, rb) = (TaskId.Stage.allCases.firstIndex(of: a.stage) ?? 0, TaskId.Stage.allCases.firstIndex(of: b.stage) ?? 0)
        return ra != rb ? ra < rb : a.partition < b.partition
    }

    /// The repartition topics and the dead-letter topic, in memory.
    private final class Output: TaskOutput {
        unowned let driver: TaskDriver
        var deadLetters: [(topic: String, record: InputRecord, reason: BadInput)] = []
        var examples: [[UInt8]] = []
        init(driver: TaskDriver) { self.driver = driver }

        private func stage(_ target: RepartitionTarget) -> TaskId.Stage {
            switch target {
            case .items: return .items
            case .users: return .users
            case .counts: return .counts
            }
        }

        func repartition(_ target: RepartitionTarget, key: String, value: [UInt8]) {
            let partition = KafkaProducer.partition(forKey: Array(key.utf8), partitionCount: driver.repartitionPartitions)
            driver.append(TaskId(stage: stage(target), partition: partition), value)
        }

        /// As the engine's output: impressions' shown items are grouped per item partition.
        func partition(of target: RepartitionTarget, keyBytes: UnsafeRawBufferPointer) -> Int32? {
            KafkaProducer.partition(forKey: keyBytes, partitionCount: driver.repartitionPartitions)
        }

        func broadcast(_ target: RepartitionTarget, value: [UInt8]) {
            for partition in 0..<driver.repartitionPartitions {
                driver.append(TaskId(stage: stage(target), partition: partition), value)
            }
        }

        func example(key: String, value: [UInt8]) { examples.append(value) }

        func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput) {
            deadLetters.append((sourceTopic, record, reason))
        }
    }
}
