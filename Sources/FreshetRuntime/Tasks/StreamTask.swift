import FreshetCore
import FreshetEmbeddings
import FreshetFeatures

/// The one contract every task kind keeps with the engine: every lifecycle
/// hook in one place (as Kafka Streams' `Task` interface and Arroyo's operator
/// trait do), so the engine drives tasks through this protocol and never
/// switches over the kind of task.
///
/// Lifecycle, all on the processing thread (tasks are not thread-safe):
/// 1. created empty by the engine's `TaskFactory`, then `restore(from:state:nowMs:)`
///    once when a checkpoint exists;
/// 2. `process(_:nowMs:output:)` for each record of its input partition, in
///    offset order, and `advanceTime(_:output:)` after each polled batch;
/// 3. `render(into:context:)` at each flush, `snapshot()` (then
///    `takeEmbeddingCheckpoint()`) at each checkpoint;
/// 4. `close()` when the engine drops it (revoked, lost, fenced, rebuilt).
///
/// To add a task kind: a `TaskId.Stage` case, a class conforming here, and its
/// case in `TaskFactory` (docs/ARCHITECTURE.md, "Engine").
package protocol StreamTask: AnyObject {
    var id: TaskId { get }

    /// Offset of the next input record to read (what a checkpoint stores and
    /// the offset commit sends); nil before the first record and checkpoint.
    var nextOffset: Int64? { get }

    /// Folds one record of the task's input partition in. Never throws: bad
    /// input is counted or dead-lettered by the task itself.
    func process(_ record: InputRecord, nowMs: Int64, output: TaskOutput)

    /// The same for a record whose bytes are borrowed for the call (the
    /// engine's path: views into the consumer's messages). The default
    /// copies the record and calls `process(_:nowMs:output:)`; the source
    /// and item tasks, on every record of the features' path, read the bytes
    /// where they are.
    func process(_ record: RecordView, nowMs: Int64, output: TaskOutput)

    /// A record of the task's input that `process` gets a few records from
    /// now (the processing loop's look-ahead, by its Kafka key): a chance
    /// to ask the cache for the state that record will need. Must change
    /// nothing that processing reads. The default does nothing.
    func lookAhead(key: UnsafeRawBufferPointer?)

    /// Event time after a polled batch: emit watermark markers, advance the
    /// watermark, fire timers (see `TimeTick` for what is due).
    func advanceTime(_ tick: TimeTick, output: TaskOutput)

    /// Bounded runs: the input partition reached its end. Returns true when
    /// this finished the task now (a source task sends its final marker);
    /// repartition-fed tasks finish by hearing markers instead, and return false.
    func reachEnd(output: TaskOutput) -> Bool

    /// Bounded runs: the task has everything it will get (its partition ended,
    /// or every source announced its end).
    var atEnd: Bool { get }

    /// The keyed-state delta and meta fields for a checkpoint: takes (and
    /// clears) the entries changed since the last one. The engine adds the
    /// epoch and time, and writes it fenced.
    func snapshot() -> StateSnapshot

    /// Embedding rows changed and evicted since the last checkpoint (item
    /// tasks with embeddings on; empty otherwise). Called only when the
    /// snapshot is written.
    func takeEmbeddingCheckpoint() -> EmbeddingCheckpoint

    /// Loads the task's checkpoint: meta fields, then its state hash through
    /// `state` (paged; each entry once).
    /// - Throws: a decoding error for a corrupt entry, or the reader's error.
    func restore(from checkpoint: TaskCheckpoint, state: StateScan, nowMs: Int64) throws

    /// Renders the features changed since the last flush into `write`.
    func render(into write: inout FencedWrite, context: inout RenderContext)

    /// Writes `entity`'s whole Redis value again at the next flush (its
    /// features, and its vector at the next publication), although its
    /// state did not change: Redis refused its key before (`RefusedEntity`).
    /// Returns false when this task holds no such entity (another kind, or no
    /// state for it). The default holds none.
    func rewrite(_ entity: RefusedEntity) -> Bool

    /// Figures the engine publishes as metrics (read about once a second).
    var gauges: TaskGauges { get }

    /// The engine dropped the task; release what it holds.
    func close()
}

extension StreamTask {
    package func lookAhead(key: UnsafeRawBufferPointer?) {}

    package func process(_ record: RecordView, nowMs: Int64, output: TaskOutput) {
        process(record.owned(), nowMs: nowMs, output: output)
    }

    package func reachEnd(output: TaskOutput) -> Bool { false }
    package func takeEmbeddingCheckpoint() -> EmbeddingCheckpoint { EmbeddingCheckpoint() }
    package func rewrite(_ entity: RefusedEntity) -> Bool { false }
    package func close() {}
}

/// Reads a task's checkpointed state hash: calls `apply` with each (entity
/// id, encoded entry).
package typealias StateScan = (_ apply: (String, [UInt8]) throws -> Void) throws -> Void

/// What is due at one `advanceTime` call (after each polled batch).
package struct TimeTick: Sendable {
    /// Wall clock, ms since the epoch (idleness is measured in it).
    package var nowMs: Int64
    /// Source tasks send a watermark marker if theirs moved (at most every 20 ms).
    package var markersDue: Bool
    /// Bounded runs with several instances: finished source tasks repeat their final marker (every second).
    package var finalMarkersDue: Bool

    package init(nowMs: Int64, markersDue: Bool, finalMarkersDue: Bool) {
        self.nowMs = nowMs
        self.markersDue = markersDue
        self.finalMarkersDue = finalMarkersDue
    }
}

/// A task's checkpoint content before the engine fences it: the meta fields
/// (without epoch and time) and the changed state slots with their encoder.
package struct StateSnapshot {
    package var meta = TaskCheckpoint()
    /// Store slots changed since the last checkpoint.
    package var changed: [UInt32] = []
    /// Encodes one slot's entry into the writer and returns its entity id.
    package var encode: (UInt32, inout ByteWriter) -> String = { _, _ in "" }

    package init() {}

    /// Nothing to write: no position yet and no changed entry.
    package var isEmpty: Bool { meta.nextOffset == nil && changed.isEmpty }

    /// Takes the user features changed since the last checkpoint (source and user tasks keep them).
    package mutating func takeUserDelta(_ users: UserFeatureStore) {
        changed = users.takeChangedSlotsForCheckpoint()
        encode = users.appendCheckpointEntry
        meta.entries = users.count
    }
}

/// Embedding rows for the checkpoint's `ckpt:<task>:emb` hash.
package struct EmbeddingCheckpoint {
    /// (item id, encoded row) for rows changed since the last checkpoint.
    package var changed: [(String, [UInt8])] = []
    /// Items whose rows were evicted (their fields are deleted).
    package var evicted: [String] = []
    package init() {}
}

/// Publishes embedding vectors into a task's flush (the engine implements it:
/// field names, Feast rows and the vector set are engine configuration).
package protocol EmbeddingPublisher: AnyObject {
    func renderUserEmbeddings(_ side: UserEmbeddingSide, store: UserFeatureStore, set: ItemVectorSet,
                              into write: inout FencedWrite)
    /// `partition`: the item task's (which items of a published set it owns).
    func renderItemEmbeddings(_ side: ItemEmbeddingSide, partition: Int32, set: ItemVectorSet, into write: inout FencedWrite)
}

/// What one flush shares across tasks: the renderer, the samples and counts
/// the tasks add to, and the embedding vectors to publish (nil: no sync due).
package struct RenderContext {
    package let renderer: FeatureRenderer
    package let vectors: ItemVectorSet?
    package let embeddings: EmbeddingPublisher?
    /// Event times of rendered changes (freshness histogram).
    package var samples: [Int64] = []
    /// (user id, interaction count) of rendered users (the examples' serving
    /// feature), filled only when `collectsCounts`.
    package var counts: [(String, Int64)] = []
    /// Whether `counts` is filled (the engine publishes it only with the examples topic on).
    package var collectsCounts = true
    /// Item tasks write their whole trending top K, not only changed items
    /// (`FeatureRenderer.renderItems`): Redis refused a write to `trending`,
    /// or an item task was just assigned.
    package var rewriteTrending = false

    package init(renderer: FeatureRenderer, vectors: ItemVectorSet?, embeddings: EmbeddingPublisher?) {
        self.renderer = renderer
        self.vectors = vectors
        self.embeddings = embeddings
    }
}

/// A task's figures for metrics. Metric names and labels are the engine's
/// (`freshet_state_entries{store="<store>-<task>"}` and so on).
package struct TaskGauges {
    /// The state store's label stem (`users`, `items`) and its entry count; nil without a store.
    package var store: (name: String, entries: Int)?
    /// The task's watermark (source tasks: their partition's; item tasks: min over sources).
    package var watermarkMs: EventTimeMs?
    /// Whether `watermarkMs` is an input watermark (source tasks), which the
    /// instance's reported watermark is the minimum of.
    package var isInputWatermark = false
    /// Cumulative counts (the engine adds the growth to the counter).
    package var counts: [(TaskCount, Int)] = []
    /// Why the partition's records are not placed by one partitioner keyed
    /// by user (nil: no conflict seen), for the log.
    package var partitioningConflict: String?

    package init() {}
}

/// Cumulative per-task counts reported as counters.
package enum TaskCount: String, Sendable {
    /// `freshet_dead_letter_duplicates_skipped_total`
    case deadLetterDuplicatesSkipped = "dlq-dup"
    /// `freshet_late_events_dropped_total`
    case lateDropped = "late"
    /// `freshet_repartition_duplicates_dropped_total`
    case duplicatesDropped = "dup"
    /// `freshet_undecodable_repartition_records_total` (logged as it grows)
    case undecodable
    /// `freshet_user_key_partitioning_conflicts_total`: 1 once an
    /// `interactions` partition keyed by user holds records no single
    /// partitioner put there (logged; `UserKeyPartitioning`)
    case userKeyPartitioningConflicts = "partitioning"
    /// `freshet_user_histories_shortened_total`: positives routed with fewer
    /// items of their user's history, to fit in a message
    case userHistoriesShortened = "history-shortened"
    /// `freshet_stale_finished_markers_total` (`FinishedMarkerFence`)
    case staleFinishedMarkers = "stale-finished"
}
