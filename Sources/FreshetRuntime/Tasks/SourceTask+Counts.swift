import FreshetCore

/// What an interactions task sends to the counts stage (examples on, input
/// keyed by user; `Topology.routesExamplesThroughCounts`), besides what it
/// sends to the items stage as before: every interaction, a positive with
/// the user's `interaction_count` after it (read after the user store
/// applied it). Impressions reach the counts stage from the item tasks, with
/// their items' features (`ImpressionFeaturesPart`).
///
/// A late event (at or behind this partition's watermark once observed)
/// carries the time it is known from (`BoundedOutOfOrdernessWatermark.knownAt`):
/// the counts stage orders it, counts it and the join decides on it by that
/// time, so their results depend on this partition's log alone.
///
/// The record is written from the ids read in place (no `Interaction`, no
/// `String` per id). Returns the problem when the record is too large for a
/// message (the caller dead-letters the source record), else nil.
extension SourceTask {
    /// The interaction, a positive with the user's count after it.
    func routeToCounts(interaction ids: EventIds, action: Action, dwellMs: Int64?, ts: EventTimeMs,
                       record: RecordView, output: TaskOutput) -> BadInput? {
        let countAfter = action.isPositive ? users?.interactionCount(validUTF8: ids.user) : nil
        var problem: BadInput?
        CountStageRecord.withEncodedInteraction(userId: ids.user, itemId: ids.item, action: action, dwellMs: dwellMs,
                                                ts: ts, requestId: ids.requestId, countAfter: countAfter,
                                                origin: origin(of: record), knownAt: watermark.knownAt(ts)) { bytes in
            problem = send(bytes, user: ids.user, what: "the interaction for the counts stage", output: output)
        }
        return problem
    }

    private func send(_ bytes: UnsafeRawBufferPointer, user: UnsafeRawBufferPointer, what: String,
                      output: TaskOutput) -> BadInput? {
        guard bytes.count <= output.maxRepartitionRecordBytes else { return Self.tooLarge(what, bytes.count, output) }
        output.repartition(.counts, keyBytes: user, value: bytes)
        return nil
    }
}
