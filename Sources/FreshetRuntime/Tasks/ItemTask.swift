import FreshetCore
import FreshetFeatures

/// A task over one partition of `<group>-items-repartition`: the item-keyed
/// stage. Keeps the windowed counts (`popularity_7d`, `impressions_7d`) and
/// the trending scores of the items hashed to its partition.
///
/// Its watermark is the minimum over the watermarks of every source partition
/// (forwarded as markers through the repartition topic, as Flink forwards
/// watermarks across a network shuffle), leaving idle sources out.
///
/// With the examples through the counts stage, it also evaluates each
/// impression's item features as of the impression once its watermark passes
/// the impression (`PendingImpressionFeatures`), sends them to the user's
/// counts task, then its watermark as markers to every counts task: a counts
/// task whose watermark passed an impression has every part of it.
package final class ItemTask {
    package let id: TaskId
    package let store: ItemFeatureStore
    /// Item embedding rows and the examples' item features (when embeddings are on).
    /// (Read per record by the processing thread: no dynamic exclusivity checks.)
    @exclusivity(unchecked) package var embeddings: ItemEmbeddingSide?
    /// The source partitions' watermarks: the features' event time.
    package var watermarks: WatermarkMultiplexer<DuplicateFilter.Source>
    // Touched per record by the processing thread only, never reentrantly:
    // no dynamic exclusivity checks (they cost a runtime call per access).
    @exclusivity(unchecked) package var duplicates = DuplicateFilter()
    @exclusivity(unchecked) package var nextOffset: Int64?
    @exclusivity(unchecked) package private(set) var currentWatermark: EventTimeMs?
    @exclusivity(unchecked) package private(set) var duplicatesDropped = 0
    @exclusivity(unchecked) package private(set) var lateDropped = 0
    @exclusivity(unchecked) package private(set) var undecodable = 0
    /// The watermark this task last wrote into `trending:meta` (nil: none yet).
    private var renderedMetaWatermark: EventTimeMs?
    /// Sources that announced the end of a bounded run (not checkpointed: a run's own business).
    package private(set) var finishedSources: Set<DuplicateFilter.Source> = []
    /// Which finished markers count (the engine sets `sinceMs` at acquisition).
    package var markerFence = FinishedMarkerFence()
    private let expectedSources: Set<DuplicateFilter.Source>
    /// Every source ended its bounded run and every waiting impression was
    /// evaluated: nothing waits any more in this run.
    private var evaluatedAll = false
    /// The watermark of the last marker sent to the counts stage, and whether it was the final one.
    private var lastCountsMarker: EventTimeMs?
    private var sentFinalCountsMarker = false

    /// - Parameter sources: every source partition that feeds the repartition topic.
    package init(id: TaskId, panes: PaneSpec, trending: TrendingDecay, idleTimeoutMs: Int64?,
                sources: Set<DuplicateFilter.Source>, nowMs: Int64) {
        self.id = id
        self.store = ItemFeatureStore(panes: panes, trending: trending)
        self.watermarks = WatermarkMultiplexer(idleTimeoutMs: idleTimeoutMs)
        self.expectedSources = sources
        for source in sources { watermarks.register(source, nowMs: nowMs) }
    }

    /// Every expected source has finished its bounded run (and sent everything before that).
    package var allSourcesFinished: Bool { expectedSources.isSubset(of: finishedSources) }

    /// Whether this task sends impressions' features and markers to the counts stage.
    private var sendsToCounts: Bool {
        guard let side = embeddings else { return false }
        return side.examples && side.joinsThroughCounts
    }

    package func process(_ record: InputRecord, nowMs: Int64, output: TaskOutput) {
        record.withView { process($0, nowMs: nowMs, output: output) }
    }

    /// Reads the record's bundle where it is (the engine's path: no copy).
    package func process(_ record: RecordView, nowMs: Int64, output: TaskOutput) {
        nextOffset = record.offset + 1
        markerFence.recordProducedAtMs = record.timestampMs
        // The examples need whole shown items (user, request id, source
        // position); an impression's grouped items are read in place.
        if let embeddings, embeddings.examples {
            undecodable += RecordBundle.forEachDecodable(in: record.value) { bytes throws(CodecError) in
                let grouped = try ImpressionItemsRecord.withItems(of: bytes) { group, items in
                    processImpression(group, items, embeddings: embeddings, output: output)
                }
                if !grouped { process(try RepartitionRecord.decode(bytes), nowMs: nowMs, output: output) }
            }
            embeddings.flushImpressions()
            return
        }
        // Item features (and the co-occurrence rows) need only the item id, time,
        // kind, origin and history: item events are read in place (no copy, no
        // `String` for a known item).
        undecodable += RecordBundle.forEachDecodable(in: record.value) { bytes throws(CodecError) in
            let itemEvents = try RepartitionRecord.forEachItemView(bytes) { view in
                guard admit(view.origin) else { duplicatesDropped += 1; return }
                // `if case`, not `==`: the enum's `Equatable` from another
                // module went through a witness table lookup per record.
                if case .droppedLate = store.apply(view, watermark: currentWatermark) { lateDropped += 1 }
                if let embeddings, case .interaction(let action, _) = view.kind, action.isPositive {
                    embeddings.observePositive(view)
                }
            }
            if !itemEvents { process(try RepartitionRecord.decode(bytes), nowMs: nowMs, output: output) }
        }
    }

    private func process(_ decoded: RepartitionRecord, nowMs: Int64, output: TaskOutput) {
        switch decoded {
        case .item(let event, let origin):
            guard admit(origin) else { duplicatesDropped += 1; return }
            let (outcome, slot) = store.applyReturningSlot(event, watermark: currentWatermark)
            embeddings?.process(event, origin: origin, store: store, output: output, applied: notDroppedLate(outcome),
                                itemSlot: slot)
        case .watermark(let received):
            watermarks.apply(markerFence.admit(received), nowMs: nowMs, finished: &finishedSources)
        case .interaction:
            undecodable += 1
        }
    }

    /// A grouped impression record's items with the examples on: what
    /// `process(_ decoded:)` does with each of its item events, without
    /// building them (the user and request ids are made once a record).
    private func processImpression(_ group: ImpressionItemsRecord.Header,
                                   _ items: UnsafeBufferPointer<ImpressionItemsRecord.Item>, embeddings: ItemEmbeddingSide,
                                   output: TaskOutput) {
        let userId = BorrowedByteReader.string(validUTF8: group.userId)
        let requestId = group.requestId.map { BorrowedByteReader.string(validUTF8: $0) }
        for item in items {
            var origin = group.source
            origin.subIndex = item.subIndex
            guard admit(origin) else { duplicatesDropped += 1; continue }
            let (outcome, slot) = store.applyReturningSlot(itemId: item.id, ts: group.ts, positive: false,
                                                           watermark: currentWatermark)
            // The store's own id for the item (the same bytes): no `String` made per shown item.
            let shown = ItemEmbeddingSide.ShownItemEvent(
                itemId: store.itemId(ofSlot: slot), userId: userId, requestId: requestId, ts: group.ts,
                position: item.position, knownAt: nil, source: origin, itemSlot: slot)
            embeddings.processImpression(shown, store: store, applied: notDroppedLate(outcome), output: output)
        }
    }

    /// Whether an item event is new: neither a replay's copy
    /// (`DuplicateFilter`) nor a join copy an earlier release's counts stage
    /// sent (copies of events the features took directly, for its item
    /// tasks' joiners; read after an upgrade, they would be counted twice).
    @inline(__always)
    private func admit(_ origin: RecordOrigin) -> Bool {
        origin.sourceTopic != Self.countsStageCode && duplicates.admit(origin)
    }

    private static let countsStageCode = TaskId.Stage.counts.originCode

    /// Whether the store took an event (false: dropped as late, and counted so).
    @inline(__always)
    private func notDroppedLate(_ outcome: ItemApplyOutcome) -> Bool {
        guard case .droppedLate = outcome else { return true }
        lateDropped += 1
        return false
    }

    /// Moves the task's watermark forward (idle sources drop out over wall
    /// time), evaluating the impressions it passes first; once every source
    /// ended a bounded run, evaluates every impression still waiting.
    /// Returns true when it advanced.
    @discardableResult
    package func advanceWatermark(nowMs: Int64, output: TaskOutput) -> Bool {
        var advanced = false
        if let next = watermarks.advance(nowMs: nowMs), currentWatermark.map({ next > $0 }) ?? true {
            // Before the store moves: the evaluation reads panes it may free.
            embeddings?.evaluateImpressions(through: next, store: store, output: output)
            currentWatermark = next
            store.advanceWatermark(to: next)
            embeddings?.advance(watermark: next, output: output)
            advanced = true
        }
        if !evaluatedAll && allSourcesFinished {
            embeddings?.evaluateAllImpressions(store: store, output: output)
            // The watermark may move no more: the windows of impressions
            // joined here since it last moved that it already passed (late
            // ones) close now, not in the group's next run.
            if let watermark = currentWatermark { embeddings?.advance(watermark: watermark, output: output) }
            evaluatedAll = true
        }
        return advanced
    }

    /// The counts stage's view of this partition: its watermark, sent after
    /// the features of every impression it passed (`advanceWatermark`);
    /// final once every source ended and everything was evaluated, sent
    /// again at a bounded run's resend ticks (a counts task that moved after
    /// the first one would otherwise wait for it).
    private func sendCountsMarker(_ tick: TimeTick, output: TaskOutput) {
        guard sendsToCounts else { return }
        let watermark = currentWatermark
        let final = evaluatedAll
        let due = final ? (!sentFinalCountsMarker || watermark != lastCountsMarker || tick.finalMarkersDue)
            : (tick.markersDue && watermark != nil && watermark != lastCountsMarker)
        guard due, let code = TaskId.Stage.items.originCode else { return }
        lastCountsMarker = watermark
        sentFinalCountsMarker = final
        let marker = WatermarkMarker(sourceTopic: code, sourcePartition: id.partition, watermarkMs: watermark, finished: final)
        output.broadcast(.counts, value: RepartitionRecord.watermark(marker).encoded())
    }

    /// Restores the watermark from a checkpoint without firing timers twice.
    package func restoreWatermark(_ watermark: EventTimeMs?) {
        currentWatermark = watermark
        if let watermark { store.advanceWatermark(to: watermark) }
    }
}

extension ItemTask: StreamTask {
    package func advanceTime(_ tick: TimeTick, output: TaskOutput) {
        advanceWatermark(nowMs: tick.nowMs, output: output)
        sendCountsMarker(tick, output: output)
    }

    /// Ended with its sources; with the counts stage, once its final marker went there.
    package var atEnd: Bool { allSourcesFinished && (!sendsToCounts || sentFinalCountsMarker) }

    /// Position, watermark, per-source progress, the store's metadata and delta.
    package func snapshot() -> StateSnapshot {
        var snapshot = StateSnapshot()
        snapshot.meta.nextOffset = nextOffset
        snapshot.meta.eventTimeMs = currentWatermark
        let sourceWatermarks = watermarks.inputs.compactMapValues(\.watermark)
        snapshot.meta.sources = TaskCheckpoint.SourceProgress.of(duplicates, watermarks: sourceWatermarks)
        snapshot.changed = store.takeChangedSlotsForCheckpoint()
        snapshot.encode = store.appendCheckpointEntry
        snapshot.meta.entries = store.count
        snapshot.meta.storeMetadata = store.encodeMetadata()
        // Written at every checkpoint (a field left out would keep its old value).
        if let side = embeddings, side.examples {
            snapshot.meta.joinPending = side.pending.encode(store: store)
            // With the counts stage, the join's state is the counts task's.
            if !side.joinsThroughCounts { snapshot.meta.joinState = side.joiner.encode() }
        }
        return snapshot
    }

    /// Co-occurrence rows changed since the last checkpoint (the rows other
    /// instances' refreshes read), and the evicted ones.
    package func takeEmbeddingCheckpoint() -> EmbeddingCheckpoint {
        var result = EmbeddingCheckpoint()
        guard let side = embeddings else { return result }
        result.changed = side.takeCheckpointRows()
        result.evicted = side.takeEvictedForCheckpoint().map(\.string)
        return result
    }

    /// Duplicate filter and source watermarks first, then the store (its
    /// metadata before its entries), then the task's watermark (no timer fires twice).
    package func restore(from checkpoint: TaskCheckpoint, state: StateScan, nowMs: Int64) throws {
        nextOffset = checkpoint.nextOffset
        for progress in checkpoint.sources {
            if let admitted = progress.lastAdmitted { duplicates.restore(progress.source, admitted) }
            // A source of an older topology (the counts stage, which sent
            // join copies here before the join moved there) sends nothing any more: not an input.
            if let wm = progress.watermarkMs, expectedSources.contains(progress.source) {
                watermarks.update(progress.source, watermark: wm, nowMs: nowMs)
            }
        }
        if let metadata = checkpoint.storeMetadata { try store.restoreMetadata(metadata) }
        try state { key, bytes in try store.restoreEntry(itemId: key, bytes: bytes) }
        restoreWatermark(checkpoint.eventTimeMs)
        _ = store.takeDirty()
        if let bytes = checkpoint.joinPending, let side = embeddings, side.examples {
            do {
                try side.pending.restore(bytes, store: store)
            } catch {
                throw CheckpointError(task: id, message: "join_pending field cannot be restored: \(error)")
            }
        }
        if !checkpoint.retiredJoinFields.isEmpty {
            throw CheckpointError(task: id, message: TaskCheckpoint.retiredJoinStateMessage(
                "the checkpoint holds impressions waiting for the join (\(checkpoint.retiredJoinFields.joined(separator: ", ")))"))
        }
        // Checkpoints written before the field existed have none: the join then starts empty, as it did.
        if let bytes = checkpoint.joinState, let side = embeddings, side.examples {
            do {
                try side.joiner.restore(bytes)
            } catch {
                throw CheckpointError(task: id, message: "join_state field is corrupt: \(error)")
            }
            // With the counts stage this joiner is unused: open windows an
            // earlier release's item task held here cannot move to the counts stage.
            if side.joinsThroughCounts && side.joiner.stateCount > 0 {
                throw CheckpointError(task: id, message: TaskCheckpoint.retiredJoinStateMessage(
                    "the checkpoint holds \(side.joiner.stateCount) open join windows (join_state)"))
            }
        }
    }

    /// Changed items (windows, trending); the trending meta when any changed
    /// or when the watermark moved since the meta was last written (the
    /// scores are read as of `watermark_ms`: a watermark that moves after the
    /// last changed item, as the final markers of a bounded run do, must
    /// still reach it); vectors when a sync is due.
    package func render(into write: inout FencedWrite, context: inout RenderContext) {
        let changed = context.renderer.renderItems(self, into: &write, samples: &context.samples,
                                                   rewriteTrending: context.rewriteTrending)
        let watermarkMoved = store.count > 0 && currentWatermark != renderedMetaWatermark
        if changed > 0 || watermarkMoved {
            context.renderer.trendingMeta(watermark: currentWatermark, into: &write)
            renderedMetaWatermark = currentWatermark
        }
        if let vectors = context.vectors, let side = embeddings {
            context.embeddings?.renderItemEmbeddings(side, partition: id.partition, set: vectors, into: &write)
        }
    }

    package func rewrite(_ entity: RefusedEntity) -> Bool {
        guard case .item(let itemId) = entity, store.markForRewrite(itemId: itemId) else { return false }
        embeddings?.rewrite(itemId: itemId)
        return true
    }

    package var gauges: TaskGauges {
        var gauges = TaskGauges()
        gauges.store = ("items", store.count)
        gauges.watermarkMs = currentWatermark
        gauges.counts = [(.lateDropped, lateDropped), (.duplicatesDropped, duplicatesDropped), (.undecodable, undecodable),
                         (.staleFinishedMarkers, markerFence.stale)]
        return gauges
    }
}
