import FreshetCore
import FreshetFeatures
import FreshetKafka

/// Runs the task layer in process, without servers (the idea of Kafka
/// Streams' TopologyTestDriver): an injected clock, in-memory partition logs
/// standing in for the broker (sources and repartition topics, partitioned
/// as the producer does), and an in-memory checkpoint store. Tasks are made
/// by the engine's `TaskFactory` and driven only through `StreamTask`, so a
/// crash (drop a task, restore it from its last checkpoint, replay its input
/// from the checkpointed offset) runs in microseconds.
///
/// Single-threaded; not the engine loop itself (no consumer, no Redis
/// writer): what it covers is the task contract and the dataflow between
/// tasks. The tests drive it, and so does `freshet bench tasks`
/// (`TaskBenchmark`: the task layer's CPU per event, stage by stage).
package final class TaskDriver {
    /// The injected wall clock, ms.
    package var nowMs: Int64
    let factory: TaskFactory
    package let repartitionPartitions: Int32
    package private(set) var tasks: [TaskId: any StreamTask] = [:]
    /// Each task's input partition (the "broker"), append-only; with
    /// `keepsLogs` false, the records not yet read.
    package private(set) var logs: [TaskId: [InputRecord]] = [:]
    /// The offset of each log's first record (0 unless read records were discarded).
    private var firstOffsets: [TaskId: Int64] = [:]
    /// Where each task's consumer reads next (an index into its log).
    private var positions: [TaskId: Int] = [:]
    /// False for long benchmark runs: read records and examples are not kept
    /// (a crash could then not replay; `crash` requires the logs).
    package var keepsLogs = true
    /// Thread CPU seconds each stage's tasks spent in `runUntilQuiet`
    /// (`measuresStages`: two clock reads per task and pass).
    package private(set) var stageCPUSeconds: [TaskId.Stage: Double] = [:]
    package var measuresStages = false
    /// The checkpoint store: meta fields and the state hash per task (tests
    /// may edit one as another release would have written it).
    package var checkpoints: [TaskId: (meta: [String: [UInt8]], state: [String: [UInt8]])] = [:]
    private lazy var output = Output(driver: self)
    package var deadLetters: [(topic: String, record: InputRecord, reason: BadInput)] { output.deadLetters }
    /// Every message written to the examples topic, in order (`ExampleCodec`
    /// encoding); empty with `keepsLogs` false (`examplesWritten` counts them).
    package var examples: [[UInt8]] { output.examples }
    package var examplesWritten: Int { output.examplesWritten }
    /// The order-independent digest of every example written (kept with `keepsLogs` false too).
    package var exampleDigest: ExampleDigest { output.exampleDigest }
    /// Records appended to each stage's partitions (sources and repartition topics).
    package private(set) var recordsAppended: [TaskId.Stage: Int] = [:]

    /// Tasks for `sources` (source stage → partition count) and every
    /// repartition-fed stage the topology needs.
    /// - Parameter itemEmbeddings: item tasks get an `ItemEmbeddingSide` (the
    ///   joiner; examples land in `examples`) from `topology.embeddings`.
    /// - Parameter userEmbeddings: source tasks get a `UserEmbeddingSide`,
    ///   which attaches each user's history to routed positives (the item
    ///   tasks then count co-occurrences).
    package init(topology: Topology = Topology(), interactionPartitions: Int32, impressionPartitions: Int32,
                 repartitionPartitions: Int32, nowMs: Int64, itemEmbeddings: Bool = false, userEmbeddings: Bool = false) {
        self.nowMs = nowMs
        self.repartitionPartitions = repartitionPartitions
        let settings = topology.embeddings
        self.factory = TaskFactory(topology: topology, stopAtEnd: false, decoder: EventDecoder(), panes: PaneSpec(),
                                   trending: TrendingDecay(), interactionPartitions: interactionPartitions,
                                   impressionPartitions: impressionPartitions, repartitionPartitions: repartitionPartitions,
                                   makeUserEmbeddingSide: { userEmbeddings ? UserEmbeddingSide(settings: settings) : nil },
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

    /// Appends a record to a source partition's log (`key`: the Kafka key, none by default).
    package func send(_ stage: TaskId.Stage, partition: Int32, key: [UInt8]? = nil, _ value: [UInt8]) {
        append(TaskId(stage: stage, partition: partition), value, key: key)
    }

    fileprivate func append(_ id: TaskId, _ value: [UInt8], key: [UInt8]? = nil) {
        let offset = firstOffsets[id, default: 0] + Int64(logs[id, default: []].count)
        logs[id, default: []].append(InputRecord(partition: id.partition, offset: offset, key: key, value: value, timestampMs: nil))
        recordsAppended[id.stage, default: 0] += 1
    }

    /// Feeds `task` the unread records of its log; true when there were any.
    /// The log is taken out while it is read (no copy of it per pass): a task
    /// never writes to its own input, the stages forming a DAG.
    private func feed(_ id: TaskId, _ task: any StreamTask) -> Bool {
        guard var position = positions[id], var log = logs.removeValue(forKey: id) else { return false }
        let read = position < log.count
        while position < log.count {
            task.process(log[position], nowMs: nowMs, output: output)
            position += 1
        }
        precondition(logs[id] == nil, "task \(id) wrote to its own input")
        if !keepsLogs && position > 0 {
            firstOffsets[id, default: 0] += Int64(position)
            log.removeFirst(position)
            position = 0
        }
        logs[id] = log
        positions[id] = position
        return read
    }

    /// Feeds every task its unread records, then one time tick (markers due),
    /// in stage order, until no log has anything unread.
    package func runUntilQuiet() {
        var progressed = true
        while progressed {
            progressed = false
            for id in tasks.keys.sorted(by: Self.order) {
                guard let task = tasks[id] else { continue }
                let started = measuresStages ? CPUClock.threadSeconds() : 0
                if feed(id, task) { progressed = true }
                task.advanceTime(TimeTick(nowMs: nowMs, markersDue: true, finalMarkersDue: false), output: output)
                if measuresStages { stageCPUSeconds[id.stage, default: 0] += CPUClock.threadSeconds() - started }
            }
        }
    }

    /// Bounded end: every source partition reached its end.
    package func finishSources() {
        for (id, task) in tasks where id.stage.readsSourceTopic { _ = task.reachEnd(output: output) }
        runUntilQuiet()
    }

    /// Bounded end of one source partition only (the others keep reading).
    package func finish(_ id: TaskId) {
        _ = tasks[id]?.reachEnd(output: output)
    }

    /// Feeds one task its unread records and a time tick (the other tasks
    /// wait); `finalMarkersDue`: the tick of a bounded run's marker resend.
    package func run(_ id: TaskId, finalMarkersDue: Bool = false) {
        guard let task = tasks[id] else { return }
        _ = feed(id, task)
        task.advanceTime(TimeTick(nowMs: nowMs, markersDue: true, finalMarkersDue: finalMarkersDue), output: output)
    }

    /// Checkpoints the tasks `which` selects (default all) through `snapshot()`
    /// (state hashes accumulate, as in Redis).
    package func checkpoint(_ which: (TaskId) -> Bool = { _ in true }) throws {
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
    package func crash(_ id: TaskId) throws {
        precondition(keepsLogs, "a crash replays the log: keepsLogs must be on")
        start(id)
        guard let task = tasks[id], let saved = checkpoints[id] else { return }
        let checkpoint = try TaskCheckpoint.parse(saved.meta, task: id)
        try task.restore(from: checkpoint, state: { apply in
            for (key, bytes) in saved.state { try apply(key, bytes) }
        }, nowMs: nowMs)
        positions[id] = Int(checkpoint.nextOffset ?? 0)
    }

    package func crashAll() throws {
        for id in Array(tasks.keys) { try crash(id) }
    }

    /// The item task that owns `item` (as the producer partitions it).
    package func itemFeatures(_ item: String) -> ItemFeatures? {
        let partition = KafkaProducer.partition(forKey: Array(item.utf8), partitionCount: repartitionPartitions)
        return (tasks[TaskId(stage: .items, partition: partition)] as? ItemTask)?.store.features(of: item)
    }

    /// A user's features from whichever task keeps them.
    package func userFeatures(_ user: String) -> UserFeatures? {
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
        var examplesWritten = 0
        var exampleDigest = ExampleDigest()
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

        func repartition(_ target: RepartitionTarget, partition: Int32, keyBytes: UnsafeRawBufferPointer,
                         value: UnsafeRawBufferPointer) {
            driver.append(TaskId(stage: stage(target), partition: partition), Array(value))
        }

        func broadcast(_ target: RepartitionTarget, value: [UInt8]) {
            for partition in 0..<driver.repartitionPartitions {
                driver.append(TaskId(stage: stage(target), partition: partition), value)
            }
        }

        func example(key: String, value: UnsafeRawBufferPointer) {
            examplesWritten += 1
            exampleDigest.add(key: key, value: value)
            if driver.keepsLogs { examples.append(Array(value)) }
        }

        func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput) {
            deadLetters.append((sourceTopic, record, reason))
        }
    }
}
