import FreshetCore
import FreshetEmbeddings
import FreshetFeatures

/// The item-keyed half of the embeddings, inside an item task.
///
/// It owns the co-occurrence rows of its partition's items (one writer per
/// row): a positive interaction (u, i) arriving with u's recent positive
/// items (attached by the user stage) adds to i's row. It also joins
/// impressions with interactions and emits every example to
/// `freshet-examples` with the serving features as of the impression.
///
/// Vectors come from the processor's latest spectral refresh
/// (`EmbeddingRefresher`); between refreshes, items of this partition that
/// have no refreshed vector are folded in from their row. The side publishes
/// its own items' vectors only: all of them after a new refresh, else the
/// changed fold-ins. Owned by the processing thread.
public final class ItemEmbeddingSide {
    public let rows: CooccurrenceRows
    public let joiner: ImpressionJoiner
    /// Whether the joiner runs and examples are written (`embeddings.examples`).
    let examples: Bool
    let counts: InteractionCountView
    /// Rows changed since the last checkpoint.
    var changedForCheckpoint: Set<ByteId> = []
    /// Rows changed since the last publication (fold-in candidates).
    private var changedSincePublish: Set<ByteId> = []
    /// Positives counted into rows (drives the refresh cadence, in events).
    public private(set) var positives = 0
    public private(set) var examplesEmitted = 0
    /// Version of the refresh this side last published in full.
    private(set) var publishedVersion: Int64 = 0
    /// Evicted rows whose fields must be deleted at the next publication.
    private var evicted: [ByteId] = []
    /// Evicted rows still in the checkpoint hash.
    private var evictedForCheckpoint: [ByteId] = []

    func takeEvictedForCheckpoint() -> [ByteId] {
        defer { evictedForCheckpoint.removeAll() }
        return evictedForCheckpoint
    }

    public init(settings: Topology.Embeddings, counts: InteractionCountView) {
        rows = CooccurrenceRows(config: settings.cooccurrenceConfig)
        joiner = ImpressionJoiner(windowMs: settings.joinWindowMs)
        examples = settings.examples
        self.counts = counts
    }

    /// Folds one item event in; `store` supplies the item's serving features.
    func process(_ event: ItemEvent, store: ItemFeatureStore, output: TaskOutput) {
        switch event.kind {
        case .impression(let position):
            guard examples else { return }
            let features = store.features(of: event.itemId)
            let serving = ServingFeatures(interactionCount: counts.interactionCount(event.userId) ?? -1,
                                          popularity7d: features?.popularity7d ?? 0,
                                          impressions7d: features?.impressions7d ?? 0)
            joiner.recordImpression(userId: event.userId, itemId: event.itemId, position: position.map(Int.init),
                                    requestId: event.requestId, ts: event.ts, features: serving)
        case .interaction(let action, let dwellMs):
            if action.isPositive {
                let item = ByteId(event.itemId)
                if rows.observePositive(item: item, ts: event.ts, forEachHistoryItem: event.forEachUserHistoryItem) {
                    positives += 1
                    changedForCheckpoint.insert(item)
                    changedSincePublish.insert(item)
                }
            }
            guard examples else { return }
            let example = joiner.recordInteraction(Interaction(userId: event.userId, itemId: event.itemId, action: action,
                                                               dwellMs: dwellMs, ts: event.ts, requestId: event.requestId))
            emit(example, output: output)
        }
    }

    /// Closes join windows up to the watermark (impressed-but-not-engaged
    /// negatives) and evicts rows expired by event time.
    func advance(watermark: EventTimeMs, output: TaskOutput) {
        if examples {
            for example in joiner.advance(watermark: watermark) { emit(example, output: output) }
        }
        let gone = rows.evictExpired(now: watermark)
        if !gone.isEmpty {
            evicted.append(contentsOf: gone)
            evictedForCheckpoint.append(contentsOf: gone)
            for id in gone { changedForCheckpoint.remove(id); changedSincePublish.remove(id) }
        }
    }

    /// A positive interaction read in place (`ItemEventView`), when examples
    /// are off: the co-occurrence rows need only the item, the time and the
    /// user's history, so the event is never built. Counts exactly as
    /// `process(_:store:output:)` does for the same record.
    func observePositive(_ view: ItemEventView) {
        let item = ByteId(bytes: Array(view.itemId))
        let counted = rows.observePositive(item: item, ts: view.ts) { visit in
            ItemEvent.forEachHistoryItem(inEncoded: view.userHistory, visit)
        }
        if counted {
            positives += 1
            changedForCheckpoint.insert(item)
            changedSincePublish.insert(item)
        }
    }

    private func emit(_ example: TrainingExample, output: TaskOutput) {
        examplesEmitted += 1
        output.example(key: example.userId, value: ExampleCodec.encode(example))
    }

    /// What to write for this partition's items against `set`: every item
    /// with a vector when `set` is a refresh this side has not published yet,
    /// else the fold-ins of rows changed since the last call. `deleted` =
    /// evicted items (their fields go).
    func takePublication(_ set: ItemVectorSet) -> (vectors: [(ByteId, [Float])], deleted: [ByteId]) {
        var out: [(ByteId, [Float])] = []
        if set.version > publishedVersion {
            publishedVersion = set.version
            changedSincePublish.removeAll(keepingCapacity: true)
            for id in rows.liveIds {
                if let v = vector(id, set) { out.append((id, v)) }
            }
        } else if set.version > 0 {
            for id in changedSincePublish {
                guard let r = set.rowOf[id], r < set.refreshed else {
                    if let v = vector(id, set) { out.append((id, v)) }
                    continue
                }
            }
            changedSincePublish.removeAll(keepingCapacity: true)
        }
        defer { evicted.removeAll() }
        return (out, evicted)
    }

    /// The refreshed vector, else a fold-in from the row (nil when no neighbour has a vector).
    func vector(_ id: ByteId, _ set: ItemVectorSet) -> [Float]? {
        if let v = set.vector(id) { return v }
        guard let row = rows.row(of: id) else { return nil }
        return set.foldedVector(id, degree: rows.degree(of: id), row: row)?.0
    }

    /// Checkpoint form of a row: `CooccurrenceSnapshot.encodeRow` with the last-seen time.
    func encodeRow(_ id: ByteId) -> [UInt8]? {
        guard let row = rows.row(of: id) else { return nil }
        return CooccurrenceSnapshot.encodeRow(degree: rows.degree(of: id), lastSeen: rows.lastSeen(of: id) ?? 0, entries: row)
    }
}
