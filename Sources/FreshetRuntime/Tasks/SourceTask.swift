import FreshetCore
import FreshetFeatures

/// A task over one partition of a source topic (`interactions` or `impressions`).
///
/// It decodes and validates each record (bad ones go to the dead-letter
/// topic), tracks the partition's event-time watermark, keeps user features
/// when the input is keyed by user, and routes everything item-keyed to the
/// items repartition topic. Owned by the processing thread; not thread-safe.
public final class SourceTask {
    public let id: TaskId
    public let topic: String
    /// User features, present on `interactions` tasks whose input is keyed by user.
    public let users: UserFeatureStore?
    /// User embedding rows, trained from the user's interactions (when embeddings are on).
    public var userEmbeddings: UserEmbeddingSide?
    /// Whether interactions are re-keyed by user (input not keyed by user).
    let routesInteractionsByUser: Bool
    public private(set) var watermark: BoundedOutOfOrdernessWatermark
    /// Offset of the next record to read: what a checkpoint stores.
    public var nextOffset: Int64?
    public private(set) var deadLetters = 0
    public private(set) var processed = 0
    /// Bounded runs: set when the partition reached its end.
    public private(set) var finished = false

    private let decoder: EventDecoder
    private var lastSentWatermark: EventTimeMs?
    private var sourceTopicCode: UInt8 { id.stage == .interactions ? 0 : 1 }

    public init(id: TaskId, topic: String, decoder: EventDecoder, outOfOrdernessMs: Int64,
                keepsUserFeatures: Bool, recentCapacity: Int = 50) {
        precondition(id.stage == .interactions || id.stage == .impressions, "SourceTask needs a source stage")
        self.id = id
        self.topic = topic
        self.decoder = decoder
        self.watermark = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: outOfOrdernessMs)
        self.users = (id.stage == .interactions && keepsUserFeatures) ? UserFeatureStore(recentCapacity: recentCapacity) : nil
        self.routesInteractionsByUser = id.stage == .interactions && !keepsUserFeatures
    }

    /// Folds one record in. Never throws: bad input is dead-lettered.
    public func process(_ record: InputRecord, nowMs: Int64, output: TaskOutput) {
        processed += 1
        nextOffset = record.offset + 1
        do {
            switch id.stage {
            case .interactions:
                let interaction = try record.value.withUnsafeBytes { (bytes) throws(BadInput) -> Interaction in
                    try decoder.decodeInteraction(bytes, messageTimestampMs: record.timestampMs, nowMs: nowMs)
                }
                watermark.observe(interaction.ts)
                if let users {
                    users.apply(interaction)
                    if let side = userEmbeddings, interaction.action.isPositive {
                        // The user's recent positives travel with the routed positive:
                        // the item's owner counts co-occurrences with them.
                        var event = ItemRouting.itemEvent(for: interaction)
                        event.userHistory = side.recordPositive(user: interaction.userId, item: interaction.itemId)
                        route([event], record: record, output: output)
                        return
                    }
                } else if routesInteractionsByUser {
                    let origin = RecordOrigin(sourceTopic: 0, partition: record.partition, offset: record.offset, subIndex: 0)
                    output.repartition(.users, key: interaction.userId,
                                       value: RepartitionRecord.interaction(interaction, origin: origin).encoded())
                }
                route(ItemRouting.itemEvents(for: interaction), record: record, output: output)
            case .impressions:
                let impression = try record.value.withUnsafeBytes { (bytes) throws(BadInput) -> Impression in
                    try decoder.decodeImpression(bytes, messageTimestampMs: record.timestampMs, nowMs: nowMs)
                }
                watermark.observe(impression.ts)
                route(ItemRouting.itemEvents(for: impression), record: record, output: output)
            case .items, .users:
                preconditionFailure("unreachable: checked in init")
            }
        } catch let error as BadInput {
            deadLetters += 1
            output.deadLetter(sourceTopic: topic, record: record, reason: error)
        } catch {
            preconditionFailure("decoders throw only BadInput: \(error)")
        }
    }

    private func route(_ events: [ItemEvent], record: InputRecord, output: TaskOutput) {
        for (index, event) in events.enumerated() {
            let origin = RecordOrigin(sourceTopic: sourceTopicCode, partition: record.partition,
                                      offset: record.offset, subIndex: UInt16(truncatingIfNeeded: index))
            output.repartition(.items, key: event.itemId, value: RepartitionRecord.item(event, origin: origin).encoded())
        }
    }

    /// Tells downstream tasks how far event time has progressed here, when it moved.
    /// Markers only go out when the watermark changed, so a partition with no new
    /// events goes quiet and downstream idleness detection can leave it out.
    public func emitWatermarkIfAdvanced(output: TaskOutput) {
        guard let current = watermark.watermark, current != lastSentWatermark else { return }
        lastSentWatermark = current
        sendMarker(finished: false, output: output)
    }

    /// Bounded run: the partition reached its end. Sends a final marker so that
    /// downstream tasks know this input is complete.
    public func finish(output: TaskOutput) {
        guard !finished else { return }
        finished = true
        lastSentWatermark = watermark.watermark
        sendMarker(finished: true, output: output)
    }

    private func sendMarker(finished: Bool, output: TaskOutput) {
        let marker = WatermarkMarker(sourceTopic: sourceTopicCode, sourcePartition: id.partition,
                                     watermarkMs: watermark.watermark, finished: finished)
        let bytes = RepartitionRecord.watermark(marker).encoded()
        output.broadcast(.items, value: bytes)
        if routesInteractionsByUser { output.broadcast(.users, value: bytes) }
    }

    /// Restores the watermark from a checkpoint (largest event time seen).
    public func restoreWatermark(maxTimestamp: EventTimeMs?) {
        if let maxTimestamp { watermark.observe(maxTimestamp) }
    }
}
