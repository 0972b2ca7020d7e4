import Synchronization

/// The hand-over point between the processing thread, which owns every task,
/// and the admin thread, which answers `/tasks`.
///
/// The processing thread publishes a whole `OwnershipSnapshot` (at each
/// assignment, revocation and loss, and about once a second after a batch);
/// the admin thread only copies the last one out. Task state itself is never
/// touched, nor locked, from the admin thread. Besides the snapshot, the
/// board keeps two running tallies the processing thread adds to between
/// publications: records read per input partition and each task's latest
/// acknowledged checkpoint.
///
/// Thread-safety: every member takes one short lock; safe from any thread.
package final class TaskBoard: Sendable {
    /// A task's latest acknowledged checkpoint in this ownership.
    package struct Checkpoint: Sendable, Equatable {
        /// The input offset the checkpoint saved (nil: the task had read nothing).
        package var offset: Int64?
        /// When it was taken, epoch ms.
        package var atMs: Int64
    }

    private struct State: Sendable {
        var snapshot = OwnershipSnapshot()
        /// Records read, by the engine's partition key (`topicIndex << 32 | partition`).
        var processed: [Int64: Int] = [:]
        var checkpoints: [String: Checkpoint] = [:]
    }
    private let state = Mutex(State())

    package init() {}

    // MARK: Processing thread

    /// Replaces the published snapshot.
    package func publish(_ snapshot: OwnershipSnapshot) {
        state.withLock { $0.snapshot = snapshot }
    }

    /// Adds `count` records read from one owned input partition (`key` as in
    /// `ConsumedRun`: `topicIndex << 32 | partition`).
    package func addProcessed(key: Int64, count: Int) {
        guard count > 0 else { return }
        state.withLock { $0.processed[key, default: 0] += count }
    }

    /// Notes a task's acknowledged checkpoint (`task`: the `TaskId` text, `items-3`).
    package func checkpointed(task: String, offset: Int64?, atMs: Int64) {
        state.withLock { $0.checkpoints[task] = Checkpoint(offset: offset, atMs: atMs) }
    }

    /// The tallies for the owned tasks, forgetting those of tasks no longer
    /// owned (so a task taken again later counts from zero).
    /// - Parameters:
    ///   - keys: the owned tasks' partition keys.
    ///   - tasks: the owned tasks' ids as text.
    func tallies(keepingKeys keys: Set<Int64>, tasks: Set<String>) -> (processed: [Int64: Int], checkpoints: [String: Checkpoint]) {
        state.withLock { st in
            st.processed = st.processed.filter { keys.contains($0.key) }
            st.checkpoints = st.checkpoints.filter { tasks.contains($0.key) }
            return (st.processed, st.checkpoints)
        }
    }

    // MARK: Readers

    /// The last published snapshot.
    package var snapshot: OwnershipSnapshot { state.withLock { $0.snapshot } }
}
