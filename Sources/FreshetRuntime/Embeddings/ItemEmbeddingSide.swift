import FreshetCore
import FreshetEmbeddings
import FreshetFeatures

/// The item-keyed half of the embeddings, inside an item task.
///
/// It owns the co-occurrence rows of its partition's items (one writer per
/// row): a positive interaction (u, i) arriving with u's recent positive
/// items (attached by the user stage) adds to i's row. With the examples on,
/// it evaluates each impression's item features as of the impression
/// (`PendingImpressionFeatures`) and sends them to the counts stage, which
/// joins the examples (`ImpressionFeaturesOutbox`); without the counts stage
/// (input not keyed by user) it joins them itself, by arrival.
///
/// Vectors come from the processor's latest spectral refresh
/// (`EmbeddingRefresher`); between refreshes, items of this partition that
/// have no refreshed vector are folded in from their row. The side publishes
/// its own items' vectors only: all of them after a new refresh, else the
/// changed fold-ins. Owned by the processing thread; its rows are counted on
/// its `CooccurrenceCounter`'s thread and read only through `counter.synced`.
package final class ItemEmbeddingSide {
    /// Counts positives into the rows on a thread of its own.
    private let counter: CooccurrenceCounter
    /// The co-occurrence rows once every positive handed over is counted.
    package var rows: CooccurrenceRows { counter.synced.rows }
    /// The join of the examples when the counts stage does not run (input
    /// not keyed by user); unused with it (the counts stage joins).
    package let joiner: ImpressionJoiner
    /// Whether examples are written (`embeddings.examples`): the item
    /// features as of each impression are evaluated, and joined here or in
    /// the counts stage.
    let examples: Bool
    /// Users' counts as flushed in this process: the serving count of
    /// impressions joined here (the counts stage off).
    let counts: InteractionCountView
    /// With the counts stage, which joins the examples: the evaluated item
    /// features on their way there (`sendFeaturesToCounts`); nil without it.
    @exclusivity(unchecked) private(set) var outbox: ImpressionFeaturesOutbox?
    /// The counts stage runs: it joins the examples, and this side sends it
    /// each impression's item features once evaluated.
    var joinsThroughCounts: Bool { outbox != nil }
    /// The impressions whose features wait for the watermark, and the applied
    /// events ahead of it (what an evaluation leaves out).
    let pending: PendingImpressionFeatures
    /// Positives counted into rows (waits for the counter).
    package var positives: Int { counter.synced.positives }
    /// Positives handed to the counter (the refresh cadence, in events: no wait).
    var positivesHandedOver: Int { counter.positivesHandedOver }
    @exclusivity(unchecked) package private(set) var examplesEmitted = 0
    /// Version of the refresh this side last published in full.
    private(set) var publishedVersion: Int64 = 0
    /// The impression whose shown items are being collected for the joiner
    /// (`bufferImpression`, without the counts stage), and those items. Like
    /// every member the item task reads per record, touched by the
    /// processing thread only, never reentrantly: no dynamic exclusivity
    /// checks (a runtime call per access).
    @exclusivity(unchecked) private var collecting: (userId: String, requestId: String?, ts: EventTimeMs, knownAt: EventTimeMs?)?
    @exclusivity(unchecked) private var collected: [ImpressionJoiner.ShownItem] = []

    /// Evicted rows still in the checkpoint hash (taken: the caller deletes them).
    func takeEvictedForCheckpoint() -> [ByteId] {
        let book = counter.synced
        defer { book.evictedForCheckpoint.removeAll() }
        return book.evictedForCheckpoint
    }

    /// Sends each impression's evaluated item features to the counts stage,
    /// as the item task of `partition`, instead of joining here.
    func sendFeaturesToCounts(fromPartition partition: Int32) {
        outbox = ImpressionFeaturesOutbox(partition: partition)
    }

    package init(settings: Topology.Embeddings, counts: InteractionCountView) {
        counter = CooccurrenceCounter(config: settings.cooccurrenceConfig)
        joiner = ImpressionJoiner(windowMs: settings.joinWindowMs)
        pending = PendingImpressionFeatures()
        examples = settings.examples
        self.counts = counts
    }

    /// Folds one item event in; `store` supplies the item's serving features.
    /// `origin`: the event's (an impression's item index is its sub-index);
    /// `applied`: the store took the event (not dropped as late);
    /// `itemSlot`: the event's item in `store` (nil for an event the store ignores).
    func process(_ event: ItemEvent, origin: RecordOrigin, store: ItemFeatureStore, output: TaskOutput,
                 applied: Bool = true, itemSlot: UInt32? = nil) {
        if examples && applied, let itemSlot, case .interaction(let action, _) = event.kind, action.isPositive {
            pending.noteApplied(item: itemSlot, ts: event.ts, knownFrom: event.knownAtMs ?? event.ts, positive: true)
        }
        switch event.kind {
        case .impression(let position):
            processImpression(ShownItemEvent(itemId: event.itemId, userId: event.userId, requestId: event.requestId,
                                             ts: event.ts, position: position, knownAt: event.knownAtMs,
                                             source: origin, itemSlot: itemSlot),
                              store: store, applied: applied, output: output)
        case .interaction(let action, let dwellMs):
            if action.isPositive {
                var itemId = event.itemId
                itemId.withUTF8 { bytes in
                    event.userHistoryEncoded.withUnsafeBytes { history in
                        counter.observePositive(item: UnsafeRawBufferPointer(bytes), ts: event.ts, history: history)
                    }
                }
            }
            // With the counts stage, the user's counts task joins the interaction.
            guard examples, !joinsThroughCounts else { return }
            flushImpressions()
            let example = joiner.recordInteraction(Interaction(userId: event.userId, itemId: event.itemId, action: action,
                                                               dwellMs: dwellMs, ts: event.ts, requestId: event.requestId),
                                                   knownAt: event.knownAtMs)
            emit(example, output: output)
        }
    }

    /// One shown item of an impression as the item stage reads it: an
    /// impression's `ItemEvent`, or an item of a grouped record read in
    /// place (`ItemTask`), whose user and request ids are made once a record.
    struct ShownItemEvent {
        var itemId: String
        var userId: String
        var requestId: String?
        var ts: EventTimeMs
        var position: Int32?
        /// When a late event is known from (`ItemEvent.knownAtMs`).
        var knownAt: EventTimeMs?
        /// The impression's source record; its sub-index is the item's index among the shown items.
        var source: RecordOrigin
        /// The item's slot in the task's store (nil: the store ignored the event).
        var itemSlot: UInt32?
    }

    /// An impression's shown item; `applied`: the store took it (not dropped as late).
    func processImpression(_ shown: ShownItemEvent, store: ItemFeatureStore, applied: Bool, output: TaskOutput) {
        guard examples else { return }
        let knownFrom = shown.knownAt ?? shown.ts
        if let item = shown.itemSlot, applied {
            pending.noteApplied(item: item, ts: shown.ts, knownFrom: knownFrom, positive: false)
        }
        if let outbox {
            // Its features once the watermark passes it, to the counts stage.
            let awaited = PendingImpressionFeatures.AwaitedItem(userId: shown.userId, requestId: shown.requestId, ts: shown.ts,
                                                                source: shown.source, itemId: shown.itemId,
                                                                position: shown.position)
            let item = shown.itemSlot ?? store.slot(ofItem: shown.itemId)
            // Evaluated here only when the watermark passed it already (an
            // idle source left out of it): behind the markers this task sent.
            pending.await(awaited, item: item, knownFrom: knownFrom, store: store) { shown, knownFrom, counts in
                outbox.add(shown, knownFrom: knownFrom, counts, behindWatermark: true, output: output)
            }
            outbox.flush(output: output)
            return
        }
        // Without the counts stage the impression is joined by arrival: its
        // features are what is known so far.
        let item = pending.asOf(itemId: shown.itemId, ts: shown.ts, knownFrom: knownFrom, store: store)
        let count = counts.interactionCount(shown.userId) ?? -1
        let serving = ServingFeatures(interactionCount: count, popularity7d: item.popularity7d,
                                      impressions7d: item.impressions7d)
        bufferImpression(shown, ImpressionJoiner.ShownItem(itemId: shown.itemId, position: shown.position, features: serving))
    }

    /// Adds a shown item to the impression being collected: consecutive
    /// item events of one (user, time, request id) (an impression's items
    /// that share this partition arrive together, as one grouped record) go
    /// to the joiner as one impression, so it keeps one entry and one
    /// deadline for them. Two impressions with the same user, time and
    /// request id may merge: the join is by (user, item), so that changes no example.
    private func bufferImpression(_ shown: ShownItemEvent, _ item: ImpressionJoiner.ShownItem) {
        if let current = collecting, current.ts == shown.ts, current.knownAt == shown.knownAt,
           IdBytes.equal(current.userId, shown.userId), Self.sameRequest(current.requestId, shown.requestId) {
            collected.append(item)
            return
        }
        flushImpressions()
        collecting = (shown.userId, shown.requestId, shown.ts, shown.knownAt)
        collected.append(item)
    }

    private static func sameRequest(_ a: String?, _ b: String?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case (let a?, let b?): IdBytes.equal(a, b)
        default: false
        }
    }

    /// Hands the impression being collected to the joiner. Called before
    /// anything else reaches the joiner, and by the item task after each
    /// record, so nothing is left collecting at a checkpoint.
    func flushImpressions() {
        guard let current = collecting else { return }
        joiner.recordImpression(userId: current.userId, requestId: current.requestId, ts: current.ts,
                                knownAt: current.knownAt, items: collected)
        collecting = nil
        collected.removeAll(keepingCapacity: true)
    }

    /// Evaluates the impressions known by the features' new watermark and
    /// sends their features to the counts stage (call before the store moves
    /// to it: the evaluation reads panes it may free).
    /// Without the counts stage nothing waits, but the applied events known
    /// by the watermark are forgotten all the same.
    func evaluateImpressions(through watermark: EventTimeMs, store: ItemFeatureStore, output: TaskOutput) {
        guard examples else { return }
        pending.evaluate(through: watermark, store: store) { outbox?.add($0, knownFrom: $1, $2, output: output) }
        outbox?.flush(output: output)
    }

    /// Evaluates every waiting impression: the item task's sources all ended a bounded run.
    func evaluateAllImpressions(store: ItemFeatureStore, output: TaskOutput) {
        guard examples, let outbox else { return }
        pending.evaluateAll(store: store) { outbox.add($0, knownFrom: $1, $2, output: output) }
        outbox.flush(output: output)
    }

    /// Without the counts stage, closes join windows up to the watermark
    /// (impressed-but-not-engaged negatives); evicts rows expired by event time.
    func advance(watermark: EventTimeMs, output: TaskOutput) {
        if examples && !joinsThroughCounts {
            flushImpressions()
            joiner.advance(watermark: watermark) { emit($0, output: output) }
        }
        counter.evictExpired(now: watermark)
    }

    /// Rows changed since the last call (the checkpoint's delta) as (item id,
    /// checkpoint row) pairs, encoded straight from the rows
    /// (`CooccurrenceRows.encodedRow`: the bytes of `CooccurrenceSnapshot.encodeRow`).
    func takeCheckpointRows() -> [(String, [UInt8])] {
        counter.synced.takeCheckpointRows()
    }

    /// A positive interaction read in place (`ItemEventView`), when examples
    /// are off: the co-occurrence rows need only the item, the time and the
    /// user's history, so the event is never built. Counts exactly as
    /// `process(_:store:output:)` does for the same record.
    func observePositive(_ view: ItemEventView) {
        counter.observePositive(item: view.itemId, ts: view.ts, history: view.userHistory)
    }

    private func emit(_ example: TrainingExample, output: TaskOutput) {
        examplesEmitted += 1
        output.example(example)
    }

    /// One item vector to write: `foldedIn` when it is a fold-in (the item is
    /// not in the refresh), written as `embedding_kind: fold_in`.
    struct PublishedVector {
        var id: ByteId
        var vector: [Float]
        var foldedIn: Bool
    }

    /// What to write for this partition's items against `set`: every item
    /// with a vector when `set` is a refresh this side has not published yet,
    /// else the fold-ins of rows changed since the last call. `deleted` =
    /// items whose fields go.
    ///
    /// An evicted item (`ttl`) that is in the published refresh keeps its
    /// vector until a refresh without it is published: user vectors are
    /// means of that refresh's vectors (`UserEmbeddingSide`), so deleting
    /// it at once left users counting an item Redis no longer served, and
    /// an item seen again before the next publication got no vector back (a
    /// breaker's findings). At a switch, every item of the previous refresh
    /// that this partition owns (`owns`), has no row and is not in the new
    /// set is deleted, which needs no record of evictions (a restart loads
    /// the published set first). An evicted fold-in goes at once.
    func takePublication(_ set: ItemVectorSet, owns: (ByteId) -> Bool) -> (vectors: [PublishedVector], deleted: [ByteId]) {
        let book = counter.synced
        var out: [PublishedVector] = []
        var deleted: [ByteId] = []
        defer { book.evicted.removeAll() }
        // Items whose key Redis refused: their vector goes again, whatever changed.
        let rewrites = rewriteDue
        rewriteDue.removeAll()
        if set.version > 0 && set.version <= publishedVersion {
            for id in rewrites { if let v = vector(id, set, rows: book.rows) { out.append(v) } }
        }
        // Neither in `set` nor counted here any more: its fields go.
        func gone(_ id: ByteId) -> Bool { set.rowOf[id] == nil && !book.rows.hasRow(id) }
        if set.version > publishedVersion {
            publishedVersion = set.version
            _ = book.takeChangedForPublish()
            for id in book.rows.liveIds {
                if let v = vector(id, set, rows: book.rows) { out.append(v) }
            }
            if let previous = lastSet {
                for id in previous.items[0..<previous.refreshed] where gone(id) && owns(id) {
                    deleted.append(id)
                }
            }
            // (Evicted items of the previous refresh are in the loop above.)
            for id in book.evicted where gone(id) && !(lastSet?.isRefreshed(id) ?? false) {
                deleted.append(id)
            }
            lastSet = set
            return (out, deleted)
        }
        guard set.version > 0 else { return ([], book.evicted) }
        for id in book.takeChangedForPublish() where !set.isRefreshed(id) {
            if let v = vector(id, set, rows: book.rows) { out.append(v) }
        }
        // Evicted since the last call: a fold-in's fields go now; a refreshed
        // item's stay until a refresh without it is published (above).
        for id in book.evicted where !set.isRefreshed(id) && !book.rows.hasRow(id) {
            deleted.append(id)
        }
        return (out, deleted)
    }

    /// Items whose vector the next publication writes again although it did
    /// not change: Redis refused their key (`RefusedEntity`).
    private var rewriteDue: [ByteId] = []

    /// Whether a publication is due for `rewrite(itemId:)` (the engine then
    /// publishes at the next flush, not only at the next sync).
    var rewritePending: Bool { !rewriteDue.isEmpty }

    /// Writes the item's vector again at the next publication (a key Redis
    /// refused; the features are marked in the store).
    func rewrite(itemId: String) { rewriteDue.append(ByteId(itemId)) }

    /// The published refresh of this side's last switch (its items' fields
    /// are deleted at the next switch when they lost their rows).
    private var lastSet: ItemVectorSet?

    /// The refreshed vector, else a fold-in from its row in `rows` (nil when
    /// it has no row or no neighbour has a vector). `rows` as synced once by the caller.
    private func vector(_ id: ByteId, _ set: ItemVectorSet, rows: CooccurrenceRows) -> PublishedVector? {
        if set.isRefreshed(id), let v = set.vector(id) { return PublishedVector(id: id, vector: v, foldedIn: false) }
        neighbourRows.update(set, numbering: rows, interned: rows.internedCount) { rows.internedId($0) }
        let setRows = neighbourRows.rows
        let folded = set.foldedVector(degree: rows.degree(of: id)) { visit in
            rows.forEachEntry(of: id) { neighbour, count in
                let r = setRows[Int(neighbour)]
                if r >= 0 { visit(Int(r), count) }
            }
        }?.0
        return folded.map { PublishedVector(id: id, vector: $0, foldedIn: true) }
    }

    /// The rows' interned neighbour numbers mapped to rows of the set a fold-in reads.
    private var neighbourRows = SetRowsOfNumbers()
}
