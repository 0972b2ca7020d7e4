import FreshetCore
import FreshetFeatures

/// A task over one partition of a source topic (`interactions` or `impressions`).
///
/// It decodes and validates each record (bad ones go to the dead-letter
/// topic), tracks the partition's event-time watermark, keeps user features
/// when the input is keyed by user, and routes everything item-keyed to the
/// items repartition topic. Owned by the processing thread; not thread-safe.
package final class SourceTask {
    package let id: TaskId
    package let topic: String
    /// User features, present on `interactions` tasks whose input is keyed by user.
    package let users: UserFeatureStore?
    /// User embedding rows, trained from the user's interactions (when embeddings are on).
    /// This and the flags below are read per record by the processing
    /// thread only, never reentrantly: no dynamic exclusivity checks.
    @exclusivity(unchecked) package var userEmbeddings: UserEmbeddingSide?
    /// Whether interactions are re-keyed by user (input not keyed by user).
    let routesInteractionsByUser: Bool
    /// Whether the counts stage runs (examples on, input keyed by user): see `SourceTask+Counts.swift`.
    @exclusivity(unchecked) package var routesThroughCounts = false
    /// Whether non-positive interactions (skips) go to the item stage: only
    /// its join takes them (a skip is a negative example), and only when
    /// the join takes its interactions from there (examples on without the
    /// counts stage). The item features and the co-occurrence rows ignore
    /// skips, so otherwise routing them only cost a record each way
    /// (`Topology.itemStageTakesSkips`). True unless the factory knows better.
    @exclusivity(unchecked) package var routesSkipsToItems = true
    // Touched per record by the processing thread only, never reentrantly:
    // no dynamic exclusivity checks (they cost a runtime call per access).
    @exclusivity(unchecked) package private(set) var watermark: BoundedOutOfOrdernessWatermark
    /// Positives sent to the item stage with fewer items of their user's
    /// history than the user has, to fit in a message (`routeOne`).
    package private(set) var historiesShortened = 0
    /// Offset of the next record to read: what a checkpoint stores.
    @exclusivity(unchecked) package var nextOffset: Int64?
    package private(set) var deadLetters = 0
    /// Offsets whose dead letter a previous owner already sent (after the
    /// checkpoint this task restored): replaying them sends nothing.
    /// Read per record (nearly always empty) and set at assignment, both on
    /// the processing thread, never reentrantly: no dynamic exclusivity
    /// check (it was the one runtime access call left per source record).
    @exclusivity(unchecked) package var deadLettersAlreadySent: Set<Int64> = []
    package private(set) var deadLetterDuplicatesSkipped = 0
    @exclusivity(unchecked) package private(set) var processed = 0
    /// Bounded runs: set when the partition reached its end (read per record).
    @exclusivity(unchecked) package private(set) var finished = false
    /// Bounded runs: records read after the end, left for the next run.
    @exclusivity(unchecked) package private(set) var recordsAfterEnd = 0

    private let decoder: EventDecoder
    /// The record being processed, its ids as bytes (reused: its buffers keep
    /// their capacity). Only this task's processing touches it, never reentrantly.
    @exclusivity(unchecked) private var decoded = DecodedEvent()
    /// The user history routed with a positive (embeddings on), encoded
    /// here for every positive in turn (reused storage, same rule).
    @exclusivity(unchecked) private var historyScratch = ByteWriter(capacity: 256)
    /// The users of the records `lookAhead` was shown, on their way into the cache.
    @exclusivity(unchecked) private var userPrefetch = UserStatePrefetcher()
    private var lastSentWatermark: EventTimeMs?
    /// This task's source topic in repartitioned records' origins and markers.
    private let sourceTopicCode: UInt8

    /// Where a record routed from `record` comes from (the downstream duplicate
    /// filter's key): this topic, partition and offset, and the record's place
    /// among those one source record produced.
    @inline(__always)
    func origin(of record: RecordView, subIndex: UInt32 = 0) -> RecordOrigin {
        RecordOrigin(sourceTopic: sourceTopicCode, partition: record.partition, offset: record.offset, subIndex: subIndex)
    }

    package init(id: TaskId, topic: String, decoder: EventDecoder, outOfOrdernessMs: Int64,
                keepsUserFeatures: Bool, recentCapacity: Int = 50) {
        precondition(id.stage.readsSourceTopic, "SourceTask needs a source stage")
        self.id = id
        self.sourceTopicCode = id.stage.sourceCode ?? 0
        self.topic = topic
        self.decoder = decoder
        self.watermark = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: outOfOrdernessMs)
        self.users = (id.stage == .interactions && keepsUserFeatures) ? UserFeatureStore(recentCapacity: recentCapacity) : nil
        self.routesInteractionsByUser = id.stage == .interactions && !keepsUserFeatures
    }

    /// Whether this partition's records are placed by one partitioner keyed
    /// by user (interactions keyed by user, from a topic of several
    /// partitions; nil otherwise): see `UserKeyPartitioning`.
    @exclusivity(unchecked) var keyPartitioning: UserKeyPartitioning?

    /// Records are keyed by user id: the user's state is asked for while
    /// the records before it are processed (a hint; no effect on results).
    package func lookAhead(key: UnsafeRawBufferPointer?) {
        if let users { userPrefetch.show(key: key, store: users) }
    }

    /// Folds one record in. Never throws: bad input is dead-lettered.
    package func process(_ record: InputRecord, nowMs: Int64, output: TaskOutput) {
        record.withView { process($0, nowMs: nowMs, output: output) }
    }

    /// Folds one record in, reading its bytes where they are (the engine's path).
    package func process(_ record: RecordView, nowMs: Int64, output: TaskOutput) {
        // A bounded run ended this partition (end-of-partition notice): a
        // record read after it was produced since and belongs to the next run.
        // Processing it would move the watermark past the final one every
        // downstream task was told (the counts stage ended behind the item
        // features'); its offset is not taken, so it is not committed either.
        if finished {
            recordsAfterEnd += 1
            return
        }
        processed += 1
        nextOffset = record.offset + 1
        keyPartitioning?.observe(key: record.key)
        var alreadySent = false
        if !deadLettersAlreadySent.isEmpty {
            // Entries below the first replayed offset will never come: drop them.
            if let lowest = deadLettersAlreadySent.min(), lowest < record.offset {
                deadLettersAlreadySent = deadLettersAlreadySent.filter { $0 >= record.offset }
            }
            alreadySent = deadLettersAlreadySent.remove(record.offset) != nil
        }
        do {
            if record.valueIsNull { throw BadInput(.nullValue, "null (tombstone) value") }
            let problem: BadInput?
            switch id.stage {
            case .interactions:
                let bytes = record.value
                try decoder.decode(interaction: bytes, messageTimestampMs: record.timestampMs, nowMs: nowMs,
                                   into: &decoded)
                let event = EventFields(&decoded)
                watermark.observe(event.ts)
                var found: BadInput?
                // In place (no copy of `decoded`); nothing below reads `decoded`.
                decoded.withIdsInPlace(in: bytes) { ids in
                    found = apply(interaction: ids, event, record: record, output: output)
                }
                problem = found
            case .impressions:
                let bytes = record.value
                try decoder.decode(impression: bytes, messageTimestampMs: record.timestampMs, nowMs: nowMs,
                                   into: &decoded)
                let event = EventFields(&decoded)
                watermark.observe(event.ts)
                var found: BadInput?
                decoded.withIdsInPlace(in: bytes) { ids in
                    found = route(impression: ids, event, record: record, output: output)
                }
                problem = found
            case .items, .users, .counts:
                preconditionFailure("unreachable: checked in init")
            }
            if let problem { throw problem }
        } catch let error as BadInput {
            if alreadySent {
                deadLetterDuplicatesSkipped += 1
                return
            }
            deadLetters += 1
            output.deadLetter(sourceTopic: topic, record: record.owned(), reason: error)
        } catch {
            preconditionFailure("decoders throw only BadInput: \(error)")
        }
    }

    /// User features and routing of the interaction in `decoded` (ids as
    /// bytes, no `String` unless embeddings or re-keying by user need one).
    /// Returns the problem that dead-letters the record (an oversized routed record).
    private func apply(interaction ids: EventIds, _ event: EventFields, record: RecordView,
                       output: TaskOutput) -> BadInput? {
        let positive = event.action.isPositive
        // Embeddings: the user's recent items before this positive (read
        // before the store applies it) travel with the routed positive. The
        // user is looked up once, from the record's bytes (no String), and
        // the history is encoded into one reused buffer.
        var history: [UInt8] = []
        if let users, let side = userEmbeddings, positive {
            let slot = users.slot(forValidUTF8: ids.user)
            side.encodeHistoryBefore(slot: slot, store: users, into: &historyScratch)
            history = historyScratch.bytes
            users.applyPositive(slot: slot, itemId: ids.item, ts: event.ts)
            side.touch(slot: slot)
        } else {
            users?.apply(userId: ids.user, itemId: ids.item, ts: event.ts, positive: positive)
        }
        var tooLarge: BadInput?
        if routesThroughCounts {
            // Examples on: the counts stage gets the interaction with the count after it.
            tooLarge = routeToCounts(interaction: ids, action: event.action, dwellMs: event.dwellMs, ts: event.ts,
                                     record: record, output: output)
        }
        if routesInteractionsByUser {
            let interaction = decodedInteraction(ids, event)
            let origin = self.origin(of: record)
            let bytes = RepartitionRecord.interaction(interaction, origin: origin).encoded()
            if bytes.count <= output.maxRepartitionRecordBytes {
                output.repartition(.users, key: interaction.userId, value: bytes)
            } else {
                tooLarge = Self.tooLarge("the interaction re-keyed by user", bytes.count, output)
            }
        }
        var eventTooLarge: BadInput?
        if positive || routesSkipsToItems {
            routeOne(itemId: ids.item, ids: ids, ts: event.ts, kind: .interaction(event.action, dwellMs: event.dwellMs),
                     history: history, index: 0, of: 1, record: record, output: output, tooLarge: &eventTooLarge)
        }
        return eventTooLarge ?? tooLarge
    }

    /// The interaction in `decoded` as an `Interaction` (`String`s: for the
    /// re-keying by user, not the features-only path).
    private func decodedInteraction(_ ids: EventIds, _ event: EventFields) -> Interaction {
        Interaction(userId: EventIds.string(ids.user), itemId: EventIds.string(ids.item),
                    action: event.action, dwellMs: event.dwellMs, ts: event.ts,
                    requestId: ids.requestId.map(EventIds.string))
    }

    /// Sends each shown item's event to the item stage. An event too large for
    /// any message is not sent; the others are (their sub-indices keep their
    /// places, so duplicate filtering is unaffected), and the first oversized
    /// one is returned so the caller dead-letters the source record.
    private func route(impression ids: EventIds, _ event: EventFields, record: RecordView,
                       output: TaskOutput) -> BadInput? {
        var tooLarge: BadInput?
        let count = event.itemCount
        // A late impression with the examples on goes item by item: its item
        // events carry when it is known (the examples' item features are
        // evaluated by it); the grouped record has no field for it.
        let lateForExamples = routesThroughCounts && watermark.knownAt(event.ts) != nil
        if count > 1, !lateForExamples, let first = output.partition(of: .items, keyBytes: ids.shownItem(0)) {
            routeGrouped(impression: ids, ts: event.ts, count: count, firstPartition: first, record: record,
                         output: output, tooLarge: &tooLarge)
        } else {
            for k in 0..<count {
                routeOne(itemId: ids.shownItem(k), ids: ids, ts: event.ts, kind: .impression(position: ids.position(at: k)),
                         history: [], index: k, of: count, record: record, output: output, tooLarge: &tooLarge)
            }
        }
        // With the counts stage, the item tasks send the impression there
        // with its items' features once their watermark passes it.
        return tooLarge
    }

    /// Routes an impression's shown items with one record per item partition
    /// they go to (`ImpressionItemsRecord`: the user, time, request id and
    /// source position once), in increasing item index within each; an item
    /// alone in its partition goes as an item event record. A group that
    /// would not fit in a message goes item by item. Each item's key is
    /// hashed once (`firstPartition` is item 0's): the output is handed the
    /// partition (it hashed each group's first key again, and item 0's was
    /// hashed twice, ~1.5 Murmur2 per shown item where one is enough).
    private func routeGrouped(impression ids: EventIds, ts: EventTimeMs, count: Int, firstPartition: Int32,
                              record: RecordView, output: TaskOutput, tooLarge: inout BadInput?) {
        ImpressionItemsRecord.forEachPartitionGroup(count: count, partition: {
            $0 == 0 ? firstPartition : output.partition(of: .items, keyBytes: ids.shownItem($0)) ?? 0
        }) { partition, group in
            if group.count == 1 || !routeGroup(group, partition: partition, ids: ids, ts: ts, record: record,
                                               output: output) {
                for k in group {
                    routeOne(itemId: ids.shownItem(k), ids: ids, ts: ts, kind: .impression(position: ids.position(at: k)),
                             history: [], index: k, of: count, record: record, output: output, partition: partition,
                             tooLarge: &tooLarge)
                }
            }
        }
    }

    /// Sends the shown items `members` (one item partition's, increasing) as
    /// one `ImpressionItemsRecord`; false when it would not fit in a message.
    private func routeGroup(_ members: UnsafeBufferPointer<Int>, partition: Int32, ids: EventIds, ts: EventTimeMs,
                            record: RecordView, output: TaskOutput) -> Bool {
        var sent = false
        // Closures, not the methods `ids.shownItem` / `ids.position(at:)`: a
        // method value's context (a copy of `ids`) was allocated on the heap,
        // twice per group.
        ImpressionItemsRecord.withEncoded(userId: ids.user, ts: ts, requestId: ids.requestId, source: origin(of: record),
                                          members: members, shownItem: { ids.shownItem($0) },
                                          position: { ids.position(at: $0) }) { bytes in
            guard !bytes.isEmpty, bytes.count <= output.maxRepartitionRecordBytes else { return }
            output.repartition(.items, partition: partition, keyBytes: ids.shownItem(members[0]), value: bytes)
            sent = true
        }
        return sent
    }

    /// Encodes one routed event (`ItemRouting`'s fields: the item, the event's
    /// user, time and request id) into scratch space on the stack (no array,
    /// no allocation) and hands it to the output, which copies it into its bundle.
    /// A positive whose user history makes it too large for a message goes
    /// with fewer of the history's items (the oldest leave first): the
    /// history is context for the co-occurrence rows, the item features
    /// need none of it (a few long item ids in the history had the positive
    /// dead-lettered and its item's counts lost; a breaker's finding).
    /// `partition`: the item's partition when the caller has it (not hashed again).
    @inline(__always)
    private func routeOne(itemId: UnsafeRawBufferPointer, ids: EventIds, ts: EventTimeMs, kind: ItemEvent.Kind,
                          history: [UInt8],
                          index: Int, of count: Int, record: RecordView, output: TaskOutput, partition: Int32? = nil,
                          tooLarge: inout BadInput?) {
        let origin = self.origin(of: record, subIndex: UInt32(index))
        // With the examples on, a late event's item record says when it is
        // known, as its counts-stage record does (`SourceTask+Counts`): the
        // item task evaluates the examples' item features by it.
        let knownAt = routesThroughCounts ? watermark.knownAt(ts) : nil
        guard let size = sendItem(itemId: itemId, ids: ids, ts: ts, kind: kind, history: history, origin: origin,
                                  knownAt: knownAt, output: output, partition: partition) else { return }
        if !history.isEmpty, sendWithShorterHistory(itemId: itemId, ids: ids, ts: ts, kind: kind, history: history,
                                                    origin: origin, knownAt: knownAt, output: output) {
            return
        }
        if tooLarge == nil {
            tooLarge = Self.tooLarge("item event \(index) of \(count)", size, output)
        }
    }

    /// Sends one item event; nil when sent, else its size (too large for a message).
    @inline(__always)
    private func sendItem(itemId: UnsafeRawBufferPointer, ids: EventIds, ts: EventTimeMs, kind: ItemEvent.Kind,
                          history: [UInt8], origin: RecordOrigin, knownAt: EventTimeMs?, output: TaskOutput,
                          partition: Int32? = nil) -> Int? {
        var oversized: Int?
        let bound = RepartitionRecord.itemMaxBytes(itemId: itemId, userId: ids.user, requestId: ids.requestId,
                                                   userHistoryEncoded: history, knownAtMs: knownAt)
        RawByteCursor.withScratch(capacity: bound, write: { c in
            RepartitionRecord.writeItem(itemId: itemId, userId: ids.user, ts: ts, kind: kind,
                                        requestId: ids.requestId, origin: origin, userHistoryEncoded: history,
                                        knownAtMs: knownAt, into: &c)
        }) { bytes in
            guard bytes.count <= output.maxRepartitionRecordBytes else {
                oversized = bytes.count
                return
            }
            if let partition {
                output.repartition(.items, partition: partition, keyBytes: itemId, value: bytes)
            } else {
                output.repartition(.items, keyBytes: itemId, value: bytes)
            }
        }
        return oversized
    }

    /// `sendItem` with the longest head of `history` (newest first) that
    /// fits; false when even the event without a history does not fit.
    private func sendWithShorterHistory(itemId: UnsafeRawBufferPointer, ids: EventIds, ts: EventTimeMs,
                                        kind: ItemEvent.Kind, history: [UInt8], origin: RecordOrigin,
                                        knownAt: EventTimeMs?, output: TaskOutput) -> Bool {
        var items: [[UInt8]] = []
        history.withUnsafeBytes { raw in ItemEvent.forEachHistoryItem(inEncoded: raw) { items.append(Array($0)) } }
        while !items.isEmpty {
            items.removeLast()
            if sendItem(itemId: itemId, ids: ids, ts: ts, kind: kind, history: ItemEvent.encodeHistory(bytes: items),
                        origin: origin, knownAt: knownAt, output: output) == nil {
                historiesShortened += 1
                return true
            }
        }
        return false
    }

    static func tooLarge(_ what: String, _ size: Int, _ output: TaskOutput) -> BadInput {
        BadInput(.recordTooLarge, "\(what) is \(size) bytes; a repartition message holds at most \(output.maxRepartitionRecordBytes) (output.max_message_bytes)")
    }

    /// Tells downstream tasks how far event time has progressed here, when it moved.
    /// Markers only go out when the watermark changed, so a partition with no new
    /// events goes quiet and downstream idleness detection can leave it out.
    package func emitWatermarkIfAdvanced(output: TaskOutput) {
        guard let current = watermark.watermark, current != lastSentWatermark else { return }
        lastSentWatermark = current
        sendMarker(finished: false, output: output)
    }

    /// Bounded run: the partition reached its end. Sends a final marker so that
    /// downstream tasks know this input is complete.
    package func finish(output: TaskOutput) {
        guard !finished else { return }
        finished = true
        lastSentWatermark = watermark.watermark
        sendMarker(finished: true, output: output)
    }

    /// Bounded runs with several instances: sends the final marker again.
    /// A repartition-fed task that moved to another instance after the first
    /// one was sent starts without it (markers of a run are not checkpointed),
    /// and would otherwise wait forever. Markers are idempotent.
    package func resendFinalMarker(output: TaskOutput) {
        guard finished else { return }
        sendMarker(finished: true, output: output)
    }

    private func sendMarker(finished: Bool, output: TaskOutput) {
        let marker = WatermarkMarker(sourceTopic: sourceTopicCode, sourcePartition: id.partition,
                                     watermarkMs: watermark.watermark, finished: finished)
        let bytes = RepartitionRecord.watermark(marker).encoded()
        // The counts stage hears the impressions' partitions through the item
        // tasks (their markers follow the features they send it).
        if routesThroughCounts && id.stage == .interactions { output.broadcast(.counts, value: bytes) }
        output.broadcast(.items, value: bytes)
        if routesInteractionsByUser { output.broadcast(.users, value: bytes) }
    }

    /// Restores the watermark from a checkpoint (largest event time seen).
    package func restoreWatermark(maxTimestamp: EventTimeMs?) {
        if let maxTimestamp { watermark.observe(maxTimestamp) }
    }
}

extension SourceTask: StreamTask {
    package func advanceTime(_ tick: TimeTick, output: TaskOutput) {
        if tick.markersDue { emitWatermarkIfAdvanced(output: output) }
        if tick.finalMarkersDue { resendFinalMarker(output: output) }
    }

    package func reachEnd(output: TaskOutput) -> Bool {
        guard !finished else { return false }
        finish(output: output)
        return true
    }

    package var atEnd: Bool { finished }

    /// Position, the largest event time seen, and the user features' delta (when kept here).
    package func snapshot() -> StateSnapshot {
        var snapshot = StateSnapshot()
        snapshot.meta.nextOffset = nextOffset
        snapshot.meta.eventTimeMs = watermark.maxTimestamp
        if let users { snapshot.takeUserDelta(users) }
        return snapshot
    }

    package func restore(from checkpoint: TaskCheckpoint, state: StateScan, nowMs: Int64) throws {
        nextOffset = checkpoint.nextOffset
        restoreWatermark(maxTimestamp: checkpoint.eventTimeMs)
        if let users {
            try state { key, bytes in try users.restoreEntry(userId: key, bytes: bytes) }
        }
    }

    /// User features (and vectors when a sync is due) when this task keeps them.
    package func render(into write: inout FencedWrite, context: inout RenderContext) {
        guard let users else { return }
        context.renderer.renderUsers(users, into: &write, samples: &context.samples, counts: &context.counts,
                                     collectCounts: context.collectsCounts)
        if let vectors = context.vectors, let side = userEmbeddings {
            context.embeddings?.renderUserEmbeddings(side, store: users, set: vectors, into: &write)
        }
    }

    package func rewrite(_ entity: RefusedEntity) -> Bool {
        guard case .user(let userId) = entity, let users, let slot = users.markForRewrite(userId: userId) else { return false }
        userEmbeddings?.rewrite(slot: slot)
        return true
    }

    package var gauges: TaskGauges {
        var gauges = TaskGauges()
        gauges.counts = [(.deadLetterDuplicatesSkipped, deadLetterDuplicatesSkipped), (.userHistoriesShortened, historiesShortened)]
        if let keyPartitioning {
            gauges.counts.append((.userKeyPartitioningConflicts, keyPartitioning.conflict ? 1 : 0))
            if keyPartitioning.conflict { gauges.partitioningConflict = keyPartitioning.explanation }
        }
        if let users { gauges.store = ("users", users.count) }
        gauges.watermarkMs = watermark.watermark
        gauges.isInputWatermark = true
        return gauges
    }
}

/// The scalar fields of the event in a source task's `decoded`, read before
/// its ids are borrowed in place (`DecodedEvent.withIdsInPlace`), during
/// which the task must not read `decoded` itself.
private struct EventFields {
    let ts: EventTimeMs
    let action: Action
    let dwellMs: Int64?
    let itemCount: Int
    let hasPositions: Bool

    /// `inout` only to read the stored event in place: a by-value argument
    /// from a class's property can be a copy of the whole value (its arrays retained).
    @inline(__always)
    init(_ event: inout DecodedEvent) {
        ts = event.ts
        action = event.action
        dwellMs = event.dwellMs
        itemCount = event.itemCount
        hasPositions = event.hasPositions
    }
}
