import FreshetCore
import FreshetKafka

/// Owns the tasks of this instance, keyed by `TaskId`, with their fencing
/// epochs, and routes each consumed record to its task.
///
/// The engine's rebalance code (StreamProcessor+Rebalance.swift) decides
/// when tasks come and go; this type keeps the bookkeeping consistent: a task
/// is in `tasks`, in the routing table and in the typed views, or in none.
/// Processing thread only.
final class TaskManager {
    /// Every owned task.
    private(set) var tasks: [TaskId: any StreamTask] = [:]
    /// Owned tasks in a stable order (by stage, then
    /// partition): flushes, checkpoints and gauges walk this.
    private(set) var ordered: [any StreamTask] = []
    /// The fencing epoch each owned task took at assignment (kept by the rebalance code).
    var epochs: [TaskId: Int64] = [:]

    /// Typed views, for engine features that belong to one kind of task (dead
    /// letters of source tasks, embeddings): the generic paths use `tasks`.
    private(set) var sourceTasks: [TopicPartition: SourceTask] = [:]
    private(set) var itemTasks: [Int32: ItemTask] = [:]
    private(set) var userTasks: [Int32: UserTask] = [:]

    /// Per subscribed topic (the consumer's topic index), per partition, the
    /// owning task: one array lookup per record, no hashing. Read twice per
    /// record (its look-ahead and its dispatch) and changed only by the
    /// processing thread's own rebalances, never during an access: the
    /// dynamic exclusivity check (`swift_beginAccess`, ~80 instructions a
    /// read) is turned off.
    @exclusivity(unchecked) private var routes: [[(any StreamTask)?]] = []
    /// The input topics, resolved at start (before any task exists).
    var inputs: InputTopics {
        didSet { routes = Array(repeating: [], count: inputs.subscribed.count) }
    }
    let metrics: FreshetMetrics

    init(inputs: InputTopics, metrics: FreshetMetrics) {
        self.inputs = inputs
        self.metrics = metrics
        self.routes = Array(repeating: [], count: inputs.subscribed.count)
    }

    var isEmpty: Bool { tasks.isEmpty }
    var count: Int { tasks.count }
    var ids: [TaskId] { ordered.map(\.id) }

    subscript(id: TaskId) -> (any StreamTask)? { tasks[id] }

    /// The task owning a consumed record's partition; nil when not owned (a
    /// record polled just after its partition was revoked).
    @inline(__always)
    func route(topicIndex: Int, partition: Int32) -> (any StreamTask)? {
        guard topicIndex >= 0, topicIndex < routes.count else { return nil }
        let table = routes[topicIndex]
        let slot = Int(partition)
        return slot >= 0 && slot < table.count ? table[slot] : nil
    }

    /// Adds a task (replacing one with the same id).
    func insert(_ task: any StreamTask) {
        let id = task.id
        if tasks[id] != nil { remove(id) }
        tasks[id] = task
        if let index = inputs.subscriptionIndex(of: id.stage), index < routes.count, id.partition >= 0 {
            let slot = Int(id.partition)
            if routes[index].count <= slot { routes[index].append(contentsOf: repeatElement(nil, count: slot + 1 - routes[index].count)) }
            routes[index][slot] = task
        }
        if let source = task as? SourceTask {
            sourceTasks[inputs.topicPartition(of: id)] = source
        } else if let item = task as? ItemTask {
            itemTasks[id.partition] = item
        } else if let user = task as? UserTask {
            userTasks[id.partition] = user
        }
        reorder()
    }

    /// Drops a task and its epoch, and removes its metric series (lag, records
    /// consumed, watermark, state entries): a revoked partition's last values
    /// must not linger. Nothing happens for a task not owned, except the
    /// series cleanup (idempotent).
    func drop(_ id: TaskId) {
        epochs[id] = nil
        remove(id)
        metrics.removeTask(id.description)
        metrics.removePartition(topic: inputs.topicPartition(of: id).topic, partition: id.partition)
    }

    private func remove(_ id: TaskId) {
        guard let task = tasks.removeValue(forKey: id) else { return }
        if let index = inputs.subscriptionIndex(of: id.stage), index < routes.count,
           id.partition >= 0, Int(id.partition) < routes[index].count {
            routes[index][Int(id.partition)] = nil
        }
        if task is SourceTask {
            sourceTasks[inputs.topicPartition(of: id)] = nil
        } else if task is ItemTask {
            itemTasks[id.partition] = nil
        } else if task is UserTask {
            userTasks[id.partition] = nil
        }
        task.close()
        reorder()
    }

    /// Stage order (as declared in `TaskId.Stage`), then partition.
    private func reorder() {
        ordered = tasks.values.sorted { a, b in
            a.id.stage.order != b.id.stage.order ? a.id.stage.order < b.id.stage.order : a.id.partition < b.id.partition
        }
    }
}

extension TaskId.Stage {
    fileprivate var order: Int { Self.allCases.firstIndex(of: self) ?? 0 }
}
