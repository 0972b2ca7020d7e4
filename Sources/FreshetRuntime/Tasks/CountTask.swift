import FreshetCore
import FreshetEmbeddings

/// A task over one partition of `<group>-counts-repartition`: the user-keyed
/// stage that joins the examples, exact whichever instance owns what
/// (docs/EMBEDDINGS.md, "Exact `interaction_count` across instances" and
/// "The join in the counts stage").
///
/// Its input, keyed by user like the source: from the interactions tasks
/// every interaction (positives with the user's count after them) and their
/// watermark markers; from the item tasks each impression's shown items with
/// their features as of the impression (`ImpressionFeaturesPart`, one per
/// impression and item partition) and their watermark markers. It keeps each
/// user's count timeline (`CountTimelines`), puts each impression together
/// from its parts, and holds every record until its own watermark (the
/// minimum over its inputs) passes the record's known-from time. An item task
/// sends an impression's part before the marker that moves it past the
/// impression, so an impression released then is complete. Released records
/// go to the joiner (`ImpressionJoiner`) in event-time order per user, each
/// impression stamped with count(u, t) = u's positives known by t (with
/// ts ≤ t, a late one once its source's watermark passed t: `CountTimelines`):
/// an engagement always after its impression. The joiner then closes the
/// windows the watermark passed.
///
/// Determinism: releases happen while processing the input (at the marker
/// that moves the watermark) and at the end of a bounded run, so they are a
/// function of the partition's log. An item task that replays after a crash
/// sends some parts again: one known by the watermark its partition already
/// reported is dropped (its impression was complete then), one of an
/// impression still held adds no item twice. Only idleness (live runs; wall
/// time) can move the watermark outside the log. Processing thread only.
package final class CountTask {
    package let id: TaskId
    let timelines: CountTimelines
    /// The examples' join, fed in release order; checkpointed with the task.
    package let joiner: ImpressionJoiner
    // Touched per record by the processing thread only, never reentrantly:
    // no dynamic exclusivity checks (they cost a runtime call per access).
    @exclusivity(unchecked) package var duplicates = DuplicateFilter()
    package var watermarks: WatermarkMultiplexer<DuplicateFilter.Source>
    @exclusivity(unchecked) package var nextOffset: Int64?
    /// Everything held with ts ≤ this has been released.
    @exclusivity(unchecked) package private(set) var released: EventTimeMs?
    @exclusivity(unchecked) package private(set) var duplicatesDropped = 0
    @exclusivity(unchecked) package private(set) var undecodable = 0
    @exclusivity(unchecked) package private(set) var examplesEmitted = 0
    package private(set) var finishedSources: Set<DuplicateFilter.Source> = []
    /// Which finished markers count (the engine sets `sinceMs` at acquisition).
    package var markerFence = FinishedMarkerFence()
    private let expectedSources: Set<DuplicateFilter.Source>
    /// Bounded runs: everything was released.
    private var releasedAll = false
    /// A released impression's items as the joiner takes them (reused).
    @exclusivity(unchecked) private var shown: [ImpressionJoiner.ShownItem] = []

    /// The `interaction_count` of an impression known more than the
    /// retention after its time: not known (the examples' -1).
    package static let unknownCount: Int64 = -1

    /// - Parameters:
    ///   - sources: every interactions partition and item partition that feeds the counts topic.
    ///   - retentionMs: how late (known-from time − event time) an impression
    ///     can be and still get its exact count; later ones get `unknownCount`.
    ///   - joinWindowMs: the examples' join window.
    package init(id: TaskId, sources: Set<DuplicateFilter.Source>, idleTimeoutMs: Int64?, retentionMs: Int64,
                 joinWindowMs: Int64, nowMs: Int64) {
        self.id = id
        self.expectedSources = sources
        self.timelines = CountTimelines(retentionMs: retentionMs)
        self.joiner = ImpressionJoiner(windowMs: joinWindowMs)
        self.watermarks = WatermarkMultiplexer(idleTimeoutMs: idleTimeoutMs)
        for source in sources { watermarks.register(source, nowMs: nowMs) }
    }

    package var allSourcesFinished: Bool { expectedSources.isSubset(of: finishedSources) }
    /// Records waiting for the watermark.
    package var heldCount: Int { timelines.heldCount }
    package var peakHeld: Int { timelines.peakHeld }

    /// The user's count as of `ts` (tests and the docs' examples).
    package func count(userId: String, asOf ts: EventTimeMs) -> Int64 { timelines.count(userId: userId, asOf: ts) }

    private func process(_ record: CountStageRecord, arrival: DuplicateFilter.Position, nowMs: Int64, output: TaskOutput) -> Bool {
        switch record {
        case .interaction(let i, let countAfter, let origin, let knownAt):
            guard duplicates.admit(origin) else { duplicatesDropped += 1; return false }
            let known = knownAt ?? i.ts
            if let countAfter, i.action.isPositive {
                timelines.recordPositive(userId: i.userId, ts: known, countAfter: countAfter, watermark: released)
            }
            admit(userId: i.userId, CountTimelines.Held(ts: i.ts, knownAt: known, arrival: arrival, requestId: i.requestId,
                                                       payload: .interaction(itemId: i.itemId, action: i.action, dwellMs: i.dwellMs)),
                  output: output)
        case .impressionFeatures(let part):
            admit(part, output: output)
        case .watermark(let received):
            watermarks.apply(markerFence.admit(received), nowMs: nowMs, finished: &finishedSources)
            return true
        }
        return false
    }

    /// An impression's part from an item task: dropped when that partition
    /// already reported a watermark at or past it (sent again by a replay:
    /// the first copy came before that marker) unless it says it was
    /// evaluated behind that watermark (idleness); merged into its
    /// impression when held, else held (or, known by the released watermark,
    /// which only idleness or a restore allows, joined at once).
    private func admit(_ part: ImpressionFeaturesPart, output: TaskOutput) {
        guard let sender = part.sender else { undecodable += 1; return }
        if !part.behindSendersWatermark, let reported = watermarks.inputs[sender]?.watermark, part.knownFrom <= reported {
            duplicatesDropped += 1
            return
        }
        let held = CountTimelines.Held(ts: part.ts, knownAt: part.knownFrom, arrival: Self.arrival(of: part),
                                       requestId: part.requestId, payload: .impression(items: part.items))
        if timelines.merge(userId: part.userId, held) { return }
        admit(userId: part.userId, held, output: output)
    }

    /// An impression's place among the user's held records: its source
    /// partition's offset (a user's impressions come from one partition, in
    /// order, as they reached the counts stage before).
    private static func arrival(of part: ImpressionFeaturesPart) -> DuplicateFilter.Position {
        DuplicateFilter.Position(offset: part.source.offset, subIndex: UInt32(bitPattern: part.source.partition))
    }

    /// A record known at or before the released watermark goes out at once
    /// (only after idleness moved the watermark, or a restore: a source marks
    /// a late event known past every marker it sent before it); the others wait.
    private func admit(userId: String, _ held: CountTimelines.Held, output: TaskOutput) {
        if releasedAll || released.map({ held.knownAt <= $0 }) == true {
            join(userId: userId, held, output: output)
        } else {
            timelines.hold(userId: userId, held)
        }
    }

    /// Releases what the watermark passed; at the end of a bounded run,
    /// everything. The joiner then closes the windows the watermark passed.
    private func releaseDue(nowMs: Int64, output: TaskOutput) {
        if allSourcesFinished && !releasedAll {
            let final = watermarks.advance(nowMs: nowMs)
            timelines.takeDue(upTo: nil) { join(userId: $0, $1, output: output) }
            if let final, released.map({ final > $0 }) ?? true { released = final }
            releasedAll = true
            advanceJoin(output: output)
            return
        }
        guard let next = watermarks.advance(nowMs: nowMs), released.map({ next > $0 }) ?? true else { return }
        released = next
        timelines.takeDue(upTo: next) { join(userId: $0, $1, output: output) }
        advanceJoin(output: output)
    }

    private func advanceJoin(output: TaskOutput) {
        guard let released else { return }
        joiner.advance(watermark: released) { emit($0, output: output) }
    }

    /// Joins one released record: an impression stamped with the user's count, or an interaction.
    private func join(userId: String, _ held: CountTimelines.Held, output: TaskOutput) {
        switch held.payload {
        case .impression(let items):
            // Every positive known after `ts` is still kept only if the
            // impression was known within the retention of its time: a
            // later one's count would depend on when the older positives
            // were pruned (timing), so it carries none (-1).
            let count = held.knownAt - held.ts > timelines.retentionMs ? CountTask.unknownCount
                : timelines.count(userId: userId, asOf: held.ts)
            shown.removeAll(keepingCapacity: true)
            // In the impression's order: the first of an item listed twice owns it.
            for item in items.sorted(by: { $0.index < $1.index }) {
                let features = ServingFeatures(interactionCount: count, popularity7d: item.popularity7d,
                                               impressions7d: item.impressions7d)
                shown.append(ImpressionJoiner.ShownItem(itemId: item.itemId, position: item.position, features: features))
            }
            joiner.recordImpression(userId: userId, requestId: held.requestId, ts: held.ts, knownAt: held.lateKnownAt,
                                    items: shown)
        case .interaction(let itemId, let action, let dwellMs):
            let example = joiner.recordInteraction(Interaction(userId: userId, itemId: itemId, action: action,
                                                               dwellMs: dwellMs, ts: held.ts, requestId: held.requestId),
                                                   knownAt: held.lateKnownAt)
            emit(example, output: output)
        }
    }

    private func emit(_ example: TrainingExample, output: TaskOutput) {
        examplesEmitted += 1
        output.example(example)
    }
}

extension CountTask: StreamTask {
    package func process(_ record: InputRecord, nowMs: Int64, output: TaskOutput) {
        nextOffset = record.offset + 1
        markerFence.recordProducedAtMs = record.timestampMs
        var index: UInt32 = 0
        var sawMarker = false
        undecodable += RecordBundle.forEachDecodable(in: record.value) { bytes throws(CodecError) in
            defer { index += 1 }
            let decoded = try CountStageRecord.decode(bytes)
            let arrival = DuplicateFilter.Position(offset: record.offset, subIndex: index)
            if process(decoded, arrival: arrival, nowMs: nowMs, output: output) { sawMarker = true }
        }
        // At the marker, in the log's order: what is released, and in which
        // sequence, does not depend on how records were batched.
        if sawMarker { releaseDue(nowMs: nowMs, output: output) }
    }

    /// Idleness (live runs) can move the watermark between records.
    package func advanceTime(_ tick: TimeTick, output: TaskOutput) {
        if watermarks.idleTimeoutMs != nil { releaseDue(nowMs: tick.nowMs, output: output) }
    }

    package var atEnd: Bool { allSourcesFinished && releasedAll }

    /// Position, released watermark, per-source progress, the join's state
    /// (`join_state`, written at every checkpoint) and the changed users' entries.
    package func snapshot() -> StateSnapshot {
        var snapshot = StateSnapshot()
        snapshot.meta.nextOffset = nextOffset
        snapshot.meta.eventTimeMs = released
        snapshot.meta.sources = TaskCheckpoint.SourceProgress.of(duplicates, watermarks: watermarks.inputs.compactMapValues(\.watermark))
        snapshot.meta.joinState = joiner.encode()
        snapshot.changed = timelines.takeChangedForCheckpoint()
        snapshot.encode = timelines.appendCheckpointEntry
        snapshot.meta.entries = timelines.userCount
        return snapshot
    }

    package func restore(from checkpoint: TaskCheckpoint, state: StateScan, nowMs: Int64) throws {
        nextOffset = checkpoint.nextOffset
        for progress in checkpoint.sources {
            if let admitted = progress.lastAdmitted { duplicates.restore(progress.source, admitted) }
            // A source of an older topology (the impressions partitions, which
            // sent impressions here before the item tasks did) sends nothing any more: not an input.
            if let wm = progress.watermarkMs, expectedSources.contains(progress.source) {
                watermarks.update(progress.source, watermark: wm, nowMs: nowMs)
            }
        }
        released = checkpoint.eventTimeMs
        // (Store metadata, the release sequence of what this stage sent the
        // items stage before the join moved here, is no longer read.)
        if let bytes = checkpoint.joinState {
            do {
                try joiner.restore(bytes)
            } catch {
                throw CheckpointError(task: id, message: "join_state field is corrupt: \(error)")
            }
        }
        try state { key, bytes in try timelines.restoreEntry(userId: key, bytes: bytes) }
        _ = timelines.takeChangedForCheckpoint()
    }

    /// The counts stage writes nothing to Redis: its output is the examples topic.
    package func render(into write: inout FencedWrite, context: inout RenderContext) {}

    package var gauges: TaskGauges {
        var gauges = TaskGauges()
        gauges.store = ("counts", timelines.userCount)
        gauges.watermarkMs = released
        gauges.counts = [(.duplicatesDropped, duplicatesDropped), (.undecodable, undecodable), (.staleFinishedMarkers, markerFence.stale)]
        return gauges
    }
}
