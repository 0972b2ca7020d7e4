import FreshetCore
import FreshetFeatures

/// A task over one partition of `<group>-items-repartition`: the item-keyed
/// stage. Keeps the windowed counts (`popularity_7d`, `impressions_7d`) and
/// the trending scores of the items hashed to its partition.
///
/// Its watermark is the minimum over the watermarks of every source partition
/// (forwarded as markers through the repartition topic, as Flink forwards
/// watermarks across a network shuffle), leaving idle sources out.
package final class ItemTask {
    package let id: TaskId
    package let store: ItemFeatureStore
    /// Joiner and item embedding rows (when embeddings are on).
    /// (Read per record by the processing thread: no dynamic exclusivity checks.)
    @exclusivity(unchecked) package var embeddings: ItemEmbeddingSide?
    /// The source partitions' watermarks: the features' event time.
    package var watermarks: WatermarkMultiplexer<DuplicateFilter.Source>
    /// The counts stage's partitions (examples on): only the join waits for
    /// them. The features take every event directly from the sources, so
    /// their windows must not depend on how far that stage has released.
    private var countsWatermarks: WatermarkMultiplexer<DuplicateFilter.Source>
    /// The join's event time: the features' watermark, held back to the
    /// counts stage's (monotone).
    private var joinWatermark: EventTimeMs?
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
    /// The counts stage's join copies waiting for the features' watermark
    /// (examples through the counts stage; `HeldJoinCopies`).
    @exclusivity(unchecked) private var heldCopies = HeldJoinCopies()
    /// Join copies held for the features' watermark (gauges, tests).
    package var heldJoinCopies: Int { heldCopies.count }
    /// Every source of the features ended its bounded run and every waiting
    /// impression was evaluated: nothing waits any more in this run.
    private var evaluatedAll = false

    /// - Parameter sources: every source partition that feeds the repartition topic.
    package init(id: TaskId, panes: PaneSpec, trending: TrendingDecay, idleTimeoutMs: Int64?,
                sources: Set<DuplicateFilter.Source>, nowMs: Int64) {
        self.id = id
        self.store = ItemFeatureStore(panes: panes, trending: trending)
        self.watermarks = WatermarkMultiplexer(idleTimeoutMs: idleTimeoutMs)
        self.countsWatermarks = WatermarkMultiplexer(idleTimeoutMs: idleTimeoutMs)
        self.expectedSources = sources
        for source in sources { withWatermarks(of: source) { $0.register(source, nowMs: nowMs) } }
    }

    private static let countsOrigin = TaskId.Stage.counts.originCode

    /// Every expected source has finished its bounded run (and sent everything before that).
    package var allSourcesFinished: Bool { expectedSources.isSubset(of: finishedSources) }

    package func process(_ record: InputRecord, nowMs: Int64, output: TaskOutput) {
        record.withView { process($0, nowMs: nowMs, output: output) }
    }

    /// Reads the record's bundle where it is (the engine's path: no copy).
    package func process(_ record: RecordView, nowMs: Int64, output: TaskOutput) {
        nextOffset = record.offset + 1
        markerFence.recordProducedAtMs = record.timestampMs
        // The examples' join needs whole events (user, request id, serving
        // features); an impression's grouped items are read in place.
        if let embeddings, embeddings.examples {
            undecodable += RecordBundle.forEachDecodable(in: record.value) { bytes throws(CodecError) in
                try processForJoin(bytes, mayHold: true, nowMs: nowMs, output: output, embeddings: embeddings)
            }
            embeddings.flushImpressions()
            return
        }
        // Item features (and the co-occurrence rows) need only the item id, time,
        // kind, origin and history: item events are read in place (no copy, no
        // `String` for a known item).
        undecodable += RecordBundle.forEachDecodable(in: record.value) { bytes throws(CodecError) in
            let itemEvents = try RepartitionRecord.forEachItemView(bytes) { view in
                guard duplicates.admit(view.origin) else { duplicatesDropped += 1; return }
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

    /// One record with the examples on; a counts-stage copy that must wait
    /// for the features' watermark is held (`mayHold`), unread further.
    private func processForJoin(_ bytes: UnsafeRawBufferPointer, mayHold: Bool, nowMs: Int64, output: TaskOutput,
                                embeddings: ItemEmbeddingSide) throws(CodecError) {
        let grouped = try ImpressionItemsRecord.withItems(of: bytes) { group, items in
            // A grouped record is never late (late impressions go item by item).
            if mayHold, holds(group.source, knownFrom: group.ts, embeddings: embeddings) {
                heldCopies.hold(Self.source(group.source), knownFrom: group.ts, bytes: bytes)
                return
            }
            processImpression(group, items, embeddings: embeddings)
        }
        if grouped { return }
        let decoded = try RepartitionRecord.decode(bytes)
        if mayHold, case .item(let event, let origin) = decoded {
            let knownFrom = event.knownAtMs ?? event.ts
            if holds(origin, knownFrom: knownFrom, embeddings: embeddings) {
                heldCopies.hold(Self.source(origin), knownFrom: knownFrom, bytes: bytes)
                return
            }
        }
        process(decoded, nowMs: nowMs, output: output)
    }

    /// Whether a record from `origin` known from `knownFrom` is a join copy that must wait.
    @inline(__always)
    private func holds(_ origin: RecordOrigin, knownFrom: EventTimeMs, embeddings: ItemEmbeddingSide) -> Bool {
        origin.sourceTopic == Self.countsOrigin && embeddings.joinsThroughCounts && !evaluatedAll
            && heldCopies.mustHold(Self.source(origin), knownFrom: knownFrom, watermark: currentWatermark)
    }

    private static func source(_ origin: RecordOrigin) -> DuplicateFilter.Source {
        DuplicateFilter.Source(topic: origin.sourceTopic, partition: origin.partition)
    }

    /// Every source of the features (not the counts stage's) ended its bounded run.
    private var featureSourcesFinished: Bool {
        expectedSources.allSatisfy { $0.topic == Self.countsOrigin || finishedSources.contains($0) }
    }

    /// Evaluates what the features' watermark now allows (everything once
    /// the sources all ended a bounded run) and hands the held copies it
    /// frees to the join.
    private func releaseHeldCopies(nowMs: Int64, output: TaskOutput) {
        guard let side = embeddings, side.examples else { return }
        if !evaluatedAll && featureSourcesFinished {
            side.evaluateAllImpressions(store: store)
            evaluatedAll = true
        }
        guard heldCopies.count > 0 else { return }
        heldCopies.release(through: evaluatedAll ? nil : currentWatermark) { bytes in
            do throws(CodecError) {
                try processForJoin(bytes, mayHold: false, nowMs: nowMs, output: output, embeddings: side)
            } catch {
                undecodable += 1  // unreachable: it was read when held
            }
        }
        side.flushImpressions()
    }

    private func process(_ decoded: RepartitionRecord, nowMs: Int64, output: TaskOutput) {
        switch decoded {
        case .item(let event, let origin):
            guard duplicates.admit(origin) else { duplicatesDropped += 1; return }
            // The counts stage's copies are for the join only: the features
            // and rows got every event directly.
            let joinOnly = origin.sourceTopic == Self.countsOrigin
            var applied = false
            var itemSlot: UInt32?
            if !joinOnly {
                let (outcome, slot) = store.applyReturningSlot(event, watermark: currentWatermark)
                (applied, itemSlot) = (notDroppedLate(outcome), slot)
            }
            embeddings?.process(event, store: store, output: output, joinOnly: joinOnly, applied: applied, itemSlot: itemSlot)
        case .watermark(let received):
            let marker = markerFence.admit(received)
            let source = DuplicateFilter.Source(topic: marker.sourceTopic, partition: marker.sourcePartition)
            withWatermarks(of: source) { $0.apply(marker, nowMs: nowMs, finished: &finishedSources) }
            // A counts partition at its end has released every record it
            // holds (its final marker follows them): it holds the join back no
            // more, whatever watermark it ended at (see `advanceJoin`).
            if marker.finished && source.topic == Self.countsOrigin { countsWatermarks.remove(source) }
        case .interaction:
            undecodable += 1
        }
    }

    /// A grouped impression record's items with the examples on: what
    /// `process(_ decoded:)` does with each of its item events, without
    /// building them (the user and request ids are made once a record).
    private func processImpression(_ group: ImpressionItemsRecord.Header,
                                   _ items: UnsafeBufferPointer<ImpressionItemsRecord.Item>, embeddings: ItemEmbeddingSide) {
        let joinOnly = group.source.sourceTopic == Self.countsOrigin
        let userId = BorrowedByteReader.string(validUTF8: group.userId)
        let requestId = group.requestId.map { BorrowedByteReader.string(validUTF8: $0) }
        // The join's keys hash the ids' bytes: the user's once a record.
        let userTag = KeyIndex.tag(bytes: group.userId)
        for item in items {
            var origin = group.source
            origin.subIndex = item.subIndex
            guard duplicates.admit(origin) else { duplicatesDropped += 1; continue }
            var applied = false
            var itemSlot: UInt32?
            if !joinOnly {
                let (outcome, slot) = store.applyReturningSlot(itemId: item.id, ts: group.ts, positive: false,
                                                               watermark: currentWatermark)
                (applied, itemSlot) = (notDroppedLate(outcome), slot)
            }
            // The store's own id for the item when it took the event (the
            // same bytes): no `String` made per shown item of a direct record.
            let itemId = itemSlot.map(store.itemId(ofSlot:)) ?? BorrowedByteReader.string(validUTF8: item.id)
            let shown = ItemEmbeddingSide.ShownItemEvent(
                itemId: itemId, userId: userId, requestId: requestId,
                ts: group.ts, position: item.position, interactionCount: group.interactionCount, knownAt: nil,
                itemSlot: itemSlot, idTags: (userTag, KeyIndex.tag(bytes: item.id)))
            embeddings.processImpression(shown, store: store, joinOnly: joinOnly, applied: applied)
        }
    }

    /// Whether the store took a direct event (false: dropped as late, and counted so).
    @inline(__always)
    private func notDroppedLate(_ outcome: ItemApplyOutcome) -> Bool {
        guard case .droppedLate = outcome else { return true }
        lateDropped += 1
        return false
    }

    /// Moves the task's watermark forward (idle sources drop out over wall time).
    /// Returns true when it advanced.
    @discardableResult
    package func advanceWatermark(nowMs: Int64, output: TaskOutput) -> Bool {
        var advanced = false
        if let next = watermarks.advance(nowMs: nowMs), currentWatermark.map({ next > $0 }) ?? true {
            // Before the store moves: the evaluation reads panes it may free.
            embeddings?.evaluateImpressions(through: next, store: store)
            currentWatermark = next
            store.advanceWatermark(to: next)
            advanced = true
        }
        releaseHeldCopies(nowMs: nowMs, output: output)
        advanceJoin(nowMs: nowMs, output: output)
        return advanced
    }

    /// Runs `body` on the multiplexer that tracks `source`: the counts stage's or the sources'.
    private func withWatermarks(of source: DuplicateFilter.Source,
                                _ body: (inout WatermarkMultiplexer<DuplicateFilter.Source>) -> Void) {
        if source.topic == Self.countsOrigin { body(&countsWatermarks) } else { body(&watermarks) }
    }

    /// The join's watermark: the features' one, held back to the counts
    /// stage's partitions that have not finished (their copies reach the
    /// joiner once released there). Finished ones are out of
    /// `countsWatermarks`: in a bounded run the join ends at the features'
    /// final watermark even when the stage's final markers are behind it
    /// (they were: the last join windows then stayed open, their negatives
    /// missing; docs/EMBEDDINGS.md, "Two watermarks in an item task").
    private func advanceJoin(nowMs: Int64, output: TaskOutput) {
        guard var next = currentWatermark else { return }
        if !countsWatermarks.inputs.isEmpty {
            guard let counts = countsWatermarks.advance(nowMs: nowMs) else { return }
            next = min(next, counts)
        }
        guard joinWatermark.map({ next > $0 }) ?? true else { return }
        joinWatermark = next
        embeddings?.advance(watermark: next, output: output)
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
    }

    package var atEnd: Bool { allSourcesFinished }

    /// Position, watermark, per-source progress, the store's metadata and delta.
    package func snapshot() -> StateSnapshot {
        var snapshot = StateSnapshot()
        snapshot.meta.nextOffset = nextOffset
        snapshot.meta.eventTimeMs = currentWatermark
        let sourceWatermarks = watermarks.inputs.merging(countsWatermarks.inputs) { a, _ in a }.compactMapValues(\.watermark)
        snapshot.meta.sources = TaskCheckpoint.SourceProgress.of(duplicates, watermarks: sourceWatermarks)
        snapshot.changed = store.takeChangedSlotsForCheckpoint()
        snapshot.encode = store.appendCheckpointEntry
        snapshot.meta.entries = store.count
        snapshot.meta.storeMetadata = store.encodeMetadata()
        // Written at every checkpoint (a field left out would keep its old value).
        if let side = embeddings, side.examples {
            if side.joinsThroughCounts {
                snapshot.meta.joinFeatures = side.featuresAtImpression.encode()
                snapshot.meta.joinHeld = heldCopies.encode()
            }
            snapshot.meta.joinPending = side.pending.encode(store: store)
            snapshot.meta.joinState = side.joiner.encode()
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
            // A source of an older topology (impressions before the counts
            // stage, or the reverse) sends nothing any more: not an input.
            if let wm = progress.watermarkMs, expectedSources.contains(progress.source) {
                withWatermarks(of: progress.source) { $0.update(progress.source, watermark: wm, nowMs: nowMs) }
            }
        }
        if let metadata = checkpoint.storeMetadata { try store.restoreMetadata(metadata) }
        try state { key, bytes in try store.restoreEntry(itemId: key, bytes: bytes) }
        restoreWatermark(checkpoint.eventTimeMs)
        _ = store.takeDirty()
        if let bytes = checkpoint.joinFeatures, let side = embeddings, side.joinsThroughCounts {
            do {
                try side.featuresAtImpression.restore(bytes)
            } catch {
                throw CheckpointError(task: id, message: "join_features field is corrupt: \(error)")
            }
        }
        if let bytes = checkpoint.joinPending, let side = embeddings, side.examples {
            do {
                try side.pending.restore(bytes, store: store)
            } catch {
                throw CheckpointError(task: id, message: "join_pending field is corrupt: \(error)")
            }
        }
        if let bytes = checkpoint.joinHeld, let side = embeddings, side.joinsThroughCounts {
            do {
                try heldCopies.restore(bytes)
            } catch {
                throw CheckpointError(task: id, message: "join_held field is corrupt: \(error)")
            }
        }
        // Checkpoints written before the field existed have none: the join then starts empty, as it did.
        if let bytes = checkpoint.joinState, let side = embeddings, side.examples {
            do {
                try side.joiner.restore(bytes)
            } catch {
                throw CheckpointError(task: id, message: "join_state field is corrupt: \(error)")
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
