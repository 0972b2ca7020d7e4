import FreshetCore

/// A task over one partition of `<group>-counts-repartition`: the user-keyed
/// stage that makes the examples exact whichever instance owns what
/// (docs/EMBEDDINGS.md, "Exact `interaction_count` across instances").
///
/// Its input, keyed by user like the source: from the interactions tasks
/// every interaction (positives with the user's count after them), from the
/// impressions tasks every impression once, and both sources' watermark
/// markers (the source tasks send the item features their events directly,
/// as without this stage). It keeps each user's count timeline
/// (`CountTimelines`) and holds every record until its own watermark (the
/// minimum over every source partition, as an item task's) passes the
/// record's time; then it sends the record's item events to the items stage
/// in event-time order, for the joiner only, each impression's stamped with
/// count(u, t) = u's positives known by t (with ts ≤ t, a late one once its
/// source's watermark passed t: `CountTimelines`). The joiner then sees each
/// user's records in event-time order: an engagement always after its impression.
///
/// Determinism: releases happen while processing the input (at the marker
/// that moves the watermark) and at the end of a bounded run, so they are a
/// function of the partition's log; released records carry the origin
/// (counts stage, partition, release sequence, item index), the sequence
/// checkpointed with the state, so a replay after a crash re-sends the same
/// records under the same origins and the item tasks drop the copies. Only
/// idleness (live runs; wall time) can move the watermark outside the log.
/// Processing thread only.
package final class CountTask {
    package let id: TaskId
    let timelines: CountTimelines
    // Touched per record by the processing thread only, never reentrantly:
    // no dynamic exclusivity checks (they cost a runtime call per access).
    @exclusivity(unchecked) package var duplicates = DuplicateFilter()
    package var watermarks: WatermarkMultiplexer<DuplicateFilter.Source>
    @exclusivity(unchecked) package var nextOffset: Int64?
    /// Everything held with ts ≤ this has been released.
    @exclusivity(unchecked) package private(set) var released: EventTimeMs?
    @exclusivity(unchecked) package private(set) var duplicatesDropped = 0
    @exclusivity(unchecked) package private(set) var undecodable = 0
    package private(set) var finishedSources: Set<DuplicateFilter.Source> = []
    /// Which finished markers count (the engine sets `sinceMs` at acquisition).
    package var markerFence = FinishedMarkerFence()
    /// Records released so far (their origins' offsets): checkpointed.
    @exclusivity(unchecked) private var releaseSequence: Int64 = 0
    private let expectedSources: Set<DuplicateFilter.Source>
    private let originCode: UInt8
    private var lastSentMarker: EventTimeMs?
    /// Bounded runs: everything was released and the final marker sent.
    private var releasedAll = false
    @exclusivity(unchecked) private var scratch = ByteWriter(capacity: 256)
    /// An impression's ids while its join copies are encoded (reused).
    @exclusivity(unchecked) private var idBytes: [UInt8] = []
    @exclusivity(unchecked) private var idEnds: [Int] = []

    /// The `interaction_count` of an impression known more than the
    /// retention after its time: not known (the examples' -1).
    package static let unknownCount: Int64 = -1

    /// - Parameters:
    ///   - sources: every source partition that feeds the counts topic.
    ///   - retentionMs: how late (known-from time − event time) an impression
    ///     can be and still get its exact count; later ones get `unknownCount`.
    package init(id: TaskId, sources: Set<DuplicateFilter.Source>, idleTimeoutMs: Int64?, retentionMs: Int64, nowMs: Int64) {
        self.id = id
        self.expectedSources = sources
        self.originCode = TaskId.Stage.counts.originCode ?? 2
        self.timelines = CountTimelines(retentionMs: retentionMs)
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
        case .impression(let m, let origin, let knownAt):
            guard duplicates.admit(origin) else { duplicatesDropped += 1; return false }
            admit(userId: m.userId, CountTimelines.Held(ts: m.ts, knownAt: knownAt ?? m.ts, arrival: arrival, requestId: m.requestId,
                                                       payload: .impression(items: m.itemsShown, positions: m.positions)),
                  output: output)
        case .watermark(let received):
            watermarks.apply(markerFence.admit(received), nowMs: nowMs, finished: &finishedSources)
            return true
        }
        return false
    }

    /// A record known at or before the released watermark goes out at once
    /// (only after idleness moved the watermark, or a restore: a source marks
    /// a late event known past every marker it sent before it); the others wait.
    private func admit(userId: String, _ held: CountTimelines.Held, output: TaskOutput) {
        if releasedAll || released.map({ held.knownAt <= $0 }) == true {
            send(userId: userId, held, output: output)
        } else {
            timelines.hold(userId: userId, held)
        }
    }

    /// Releases what the watermark passed; at the end of a bounded run, everything.
    private func releaseDue(nowMs: Int64, output: TaskOutput) {
        if allSourcesFinished && !releasedAll {
            let final = watermarks.advance(nowMs: nowMs)
            timelines.takeDue(upTo: nil) { send(userId: $0, $1, output: output) }
            if let final, released.map({ final > $0 }) ?? true { released = final }
            releasedAll = true
            sendMarker(finished: true, output: output)
            return
        }
        guard let next = watermarks.advance(nowMs: nowMs), released.map({ next > $0 }) ?? true else { return }
        released = next
        timelines.takeDue(upTo: next) { send(userId: $0, $1, output: output) }
        // Ended, and a later source marker still moved the watermark: the item
        // tasks (done with this partition, maybe about to exit) hear it now,
        // not at the next once-a-second resend.
        if releasedAll { sendMarker(finished: true, output: output) }
    }

    /// The item events of one released record, impressions stamped with the user's count.
    private func send(userId: String, _ held: CountTimelines.Held, output: TaskOutput) {
        releaseSequence += 1
        switch held.payload {
        case .impression(let items, let positions):
            // Every positive known after `ts` is still kept only if the
            // impression was known within the retention of its time: a
            // later one's count would depend on when the older positives
            // were pruned (timing), so it carries none (-1).
            let count = held.knownAt - held.ts > timelines.retentionMs ? CountTask.unknownCount
                : timelines.count(userId: userId, asOf: held.ts)
            sendImpression(userId: userId, held, items: items, positions: positions, count: count, output: output)
        case .interaction(let itemId, let action, let dwellMs):
            var event = ItemEvent(itemId: itemId, userId: userId, ts: held.ts, kind: .interaction(action, dwellMs: dwellMs),
                                  requestId: held.requestId)
            event.knownAtMs = held.lateKnownAt
            route(event, subIndex: 0, output: output)
        }
    }

    /// An impression's join copies: one record per item partition its items
    /// go to (`ImpressionItemsRecord`, tag 5: the user, time, request id,
    /// origin and count once), an item alone in its partition (or an
    /// output that cannot name partitions) as an item event record, a group
    /// too large for a message item by item. The same item events, under the
    /// same origins, as one record per item.
    private func sendImpression(userId: String, _ held: CountTimelines.Held, items: [String], positions: [Int32]?,
                                count: Int64, output: TaskOutput) {
        func position(_ k: Int) -> Int32? { positions.flatMap { k < $0.count ? $0[k] : nil } }
        func one(_ k: Int) {
            var event = ItemEvent(itemId: items[k], userId: userId, ts: held.ts, kind: .impression(position: position(k)),
                                  requestId: held.requestId)
            event.interactionCount = count
            event.knownAtMs = held.lateKnownAt
            route(event, subIndex: UInt32(k), output: output)
        }
        // A late impression goes item by item: its item events carry when it
        // is known (the join decides by it); the grouped record has no field for it.
        if held.lateKnownAt != nil {
            for k in items.indices { one(k) }
            return
        }
        // Every id's bytes in one buffer (the items', then the user's and the
        // request's), so a group's encoder can read them all at once.
        idBytes.removeAll(keepingCapacity: true)
        idEnds.removeAll(keepingCapacity: true)
        func appendId(_ id: String) {
            idBytes.append(contentsOf: id.utf8)
            idEnds.append(idBytes.count)
        }
        for item in items { appendId(item) }
        appendId(userId)
        if let request = held.requestId { appendId(request) }
        let origin = RecordOrigin(sourceTopic: originCode, partition: id.partition, offset: releaseSequence)
        idBytes.withUnsafeBytes { all in
            func idAt(_ n: Int) -> UnsafeRawBufferPointer {
                let start = n == 0 ? 0 : idEnds[n - 1]
                return UnsafeRawBufferPointer(rebasing: all[start..<idEnds[n]])
            }
            let user = idAt(items.count)
            let request = held.requestId == nil ? nil : idAt(items.count + 1)
            guard output.partition(of: .items, keyBytes: idAt(0)) != nil else {
                for k in items.indices { one(k) }
                return
            }
            ImpressionItemsRecord.forEachPartitionGroup(count: items.count, partition: {
                output.partition(of: .items, keyBytes: idAt($0)) ?? 0
            }) { _, group in
                var sent = false
                if group.count > 1 {
                    ImpressionItemsRecord.withEncoded(
                        userId: user, ts: held.ts, requestId: request, source: origin, interactionCount: count,
                        members: group, shownItem: idAt, position: position) { bytes in
                        guard !bytes.isEmpty, bytes.count <= output.maxRepartitionRecordBytes else { return }
                        output.repartition(.items, keyBytes: idAt(group[0]), value: bytes)
                        sent = true
                    }
                }
                if !sent { for k in group { one(k) } }
            }
        }
    }

    private func route(_ event: ItemEvent, subIndex: UInt32, output: TaskOutput) {
        let origin = RecordOrigin(sourceTopic: originCode, partition: id.partition, offset: releaseSequence, subIndex: subIndex)
        scratch.bytes.removeAll(keepingCapacity: true)
        RepartitionRecord.item(event, origin: origin).encode(into: &scratch)
        // Each event is smaller than the counts record it came from, which fitted.
        output.repartition(.items, key: event.itemId, value: scratch.bytes)
    }

    private func sendMarker(finished: Bool, output: TaskOutput) {
        lastSentMarker = released
        let marker = WatermarkMarker(sourceTopic: originCode, sourcePartition: id.partition, watermarkMs: released, finished: finished)
        output.broadcast(.items, value: RepartitionRecord.watermark(marker).encoded())
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

    /// Idleness (live runs) can move the watermark between records; markers
    /// to the items stage go out when the released watermark moved.
    package func advanceTime(_ tick: TimeTick, output: TaskOutput) {
        if watermarks.idleTimeoutMs != nil { releaseDue(nowMs: tick.nowMs, output: output) }
        if releasedAll {
            if tick.finalMarkersDue { sendMarker(finished: true, output: output) }
        } else if tick.markersDue, released != nil, released != lastSentMarker {
            sendMarker(finished: false, output: output)
        }
    }

    package var atEnd: Bool { allSourcesFinished && releasedAll }

    /// Position, released watermark, per-source progress, the release
    /// sequence (store metadata) and the changed users' entries.
    package func snapshot() -> StateSnapshot {
        var snapshot = StateSnapshot()
        snapshot.meta.nextOffset = nextOffset
        snapshot.meta.eventTimeMs = released
        snapshot.meta.sources = TaskCheckpoint.SourceProgress.of(duplicates, watermarks: watermarks.inputs.compactMapValues(\.watermark))
        var meta = ByteWriter(capacity: 12)
        meta.write(byte: 1)
        meta.write(zigzag: releaseSequence)
        snapshot.meta.storeMetadata = meta.bytes
        snapshot.changed = timelines.takeChangedForCheckpoint()
        snapshot.encode = timelines.appendCheckpointEntry
        snapshot.meta.entries = timelines.userCount
        return snapshot
    }

    package func restore(from checkpoint: TaskCheckpoint, state: StateScan, nowMs: Int64) throws {
        nextOffset = checkpoint.nextOffset
        for progress in checkpoint.sources {
            if let admitted = progress.lastAdmitted { duplicates.restore(progress.source, admitted) }
            if let wm = progress.watermarkMs { watermarks.update(progress.source, watermark: wm, nowMs: nowMs) }
        }
        released = checkpoint.eventTimeMs
        lastSentMarker = nil
        if let bytes = checkpoint.storeMetadata {
            var r = ByteReader(bytes)
            guard try r.readByte("counts meta version") == 1 else {
                throw CheckpointError(task: id, message: "counts task metadata has an unknown version")
            }
            releaseSequence = try r.readZigzag("counts meta release sequence")
        }
        try state { key, bytes in try timelines.restoreEntry(userId: key, bytes: bytes) }
        _ = timelines.takeChangedForCheckpoint()
    }

    /// The counts stage writes nothing to Redis: its output is the items stage's input.
    package func render(into write: inout FencedWrite, context: inout RenderContext) {}

    package var gauges: TaskGauges {
        var gauges = TaskGauges()
        gauges.store = ("counts", timelines.userCount)
        gauges.watermarkMs = released
        gauges.counts = [(.duplicatesDropped, duplicatesDropped), (.undecodable, undecodable), (.staleFinishedMarkers, markerFence.stale)]
        return gauges
    }
}
