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
    package var userEmbeddings: UserEmbeddingSide?
    /// Whether interactions are re-keyed by user (input not keyed by user).
    let routesInteractionsByUser: Bool
    /// Whether the counts stage runs (examples on, input keyed by user): see `SourceTask+Counts.swift`.
    package var routesThroughCounts = false
    package private(set) var watermark: BoundedOutOfOrdernessWatermark
    /// Offset of the next record to read: what a checkpoint stores.
    package var nextOffset: Int64?
    package private(set) var deadLetters = 0
    /// Offsets whose dead letter a previous owner already sent (after the
    /// checkpoint this task restored): replaying them sends nothing.
    package var deadLettersAlreadySent: Set<Int64> = []
    package private(set) var deadLetterDuplicatesSkipped = 0
    package private(set) var processed = 0
    /// Bounded runs: set when the partition reached its end.
    package private(set) var finished = false

    private let decoder: EventDecoder
    /// Where routed records are encoded before the output copies them (reused).
    private var scratch = ByteWriter(capacity: 256)
    private var lastSentWatermark: EventTimeMs?
    /// This task's source topic in repartitioned records' origins and markers.
    private let sourceTopicCode: UInt8

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

    /// Folds one record in. Never throws: bad input is dead-lettered.
    package func process(_ record: InputRecord, nowMs: Int64, output: TaskOutput) {
        processed += 1
        nextOffset = record.offset + 1
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
            switch id.stage {
            case .interactions:
                let interaction = try record.value.withUnsafeBytes { (bytes) throws(BadInput) -> Interaction in
                    try decoder.decodeInteraction(bytes, messageTimestampMs: record.timestampMs, nowMs: nowMs)
                }
                watermark.observe(interaction.ts)
                // Embeddings: the user's recent items before this positive (read
                // before the store applies it) travel with the routed positive.
                var history: [UInt8] = []
                if let users, let side = userEmbeddings, interaction.action.isPositive {
                    history = side.encodedHistoryBefore(user: interaction.userId, store: users)
                    side.touch(user: interaction.userId)
                }
                if let users {
                    users.apply(interaction)
                }
                var tooLarge: BadInput?
                if routesThroughCounts {
                    tooLarge = routeToCounts(interaction, record: record, output: output)
                }
                if routesInteractionsByUser {
                    let origin = RecordOrigin(sourceTopic: sourceTopicCode, partition: record.partition, offset: record.offset, subIndex: 0)
                    let bytes = RepartitionRecord.interaction(interaction, origin: origin).encoded()
                    if bytes.count <= output.maxRepartitionRecordBytes {
                        output.repartition(.users, key: interaction.userId, value: bytes)
                    } else {
                        tooLarge = Self.tooLarge("the interaction re-keyed by user", bytes.count, output)
                    }
                }
                var event = ItemRouting.itemEvent(for: interaction)
                if !history.isEmpty { event.userHistoryEncoded = history }
                var eventTooLarge: BadInput?
                routeOne(event, index: 0, of: 1, record: record, output: output, tooLarge: &eventTooLarge)
                if let problem = eventTooLarge ?? tooLarge {
                    throw problem
                }
            case .impressions:
                let impression = try record.value.withUnsafeBytes { (bytes) throws(BadInput) -> Impression in
                    try decoder.decodeImpression(bytes, messageTimestampMs: record.timestampMs, nowMs: nowMs)
                }
                watermark.observe(impression.ts)
                // The item features take the impression at once; with the counts
                // stage its join copy goes there too (stamped and released later).
                let counted = routesThroughCounts ? routeToCounts(impression, record: record, output: output) : nil
                if let problem = route(impression, record: record, output: output) ?? counted {
                    throw problem
                }
            case .items, .users, .counts:
                preconditionFailure("unreachable: checked in init")
            }
        } catch let error as BadInput {
            if alreadySent {
                deadLetterDuplicatesSkipped += 1
                return
            }
            deadLetters += 1
            output.deadLetter(sourceTopic: topic, record: record, reason: error)
        } catch {
            preconditionFailure("decoders throw only BadInput: \(error)")
        }
    }

    /// Sends each shown item's event to the item stage. An event too large for
    /// any message is not sent; the others are (their sub-indices keep their
    /// places, so duplicate filtering is unaffected), and the first oversized
    /// one is returned so the caller dead-letters the source record.
    private func route(_ impression: Impression, record: InputRecord, output: TaskOutput) -> BadInput? {
        var tooLarge: BadInput?
        let count = impression.itemsShown.count
        ItemRouting.forEachItemEvent(for: impression) { index, event in
            routeOne(event, index: Int(index), of: count, record: record, output: output, tooLarge: &tooLarge)
        }
        return tooLarge
    }

    /// Encodes one routed event into the reused scratch buffer (no allocation
    /// per record once it has grown) and hands it to the output, which copies it.
    @inline(__always)
    private func routeOne(_ event: ItemEvent, index: Int, of count: Int, record: InputRecord, output: TaskOutput,
                          tooLarge: inout BadInput?) {
        let origin = RecordOrigin(sourceTopic: sourceTopicCode, partition: record.partition,
                                  offset: record.offset, subIndex: UInt32(index))
        scratch.bytes.removeAll(keepingCapacity: true)
        RepartitionRecord.item(event, origin: origin).encode(into: &scratch)
        guard scratch.bytes.count <= output.maxRepartitionRecordBytes else {
            if tooLarge == nil {
                tooLarge = Self.tooLarge("item event \(index) of \(count)", scratch.bytes.count, output)
            }
            return
        }
        output.repartition(.items, key: event.itemId, value: scratch.bytes)
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
        if routesThroughCounts { output.broadcast(.counts, value: bytes) }
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
        context.renderer.renderUsers(users, into: &write, samples: &context.samples, counts: &context.counts)
        if let vectors = context.vectors, let side = userEmbeddings {
            context.embeddings?.renderUserEmbeddings(side, store: users, set: vectors, into: &write)
        }
    }

    package var gauges: TaskGauges {
        var gauges = TaskGauges()
        gauges.counts = [(.deadLetterDuplicatesSkipped, deadLetterDuplicatesSkipped)]
        if let users { gauges.store = ("users", users.count) }
        gauges.watermarkMs = watermark.watermark
        gauges.isInputWatermark = true
        return gauges
    }
}
