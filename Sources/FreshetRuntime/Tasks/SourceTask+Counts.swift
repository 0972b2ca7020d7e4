import FreshetCore

/// What a source task sends to the counts stage (examples on, input keyed by
/// user; `Topology.routesExamplesThroughCounts`), besides what it sends to
/// the items stage as before: every interaction, a positive with the user's
/// `interaction_count` after it (read after the user store applied it), and
/// every impression once (the counts stage sends its item events for the
/// join once the watermark passed it).
extension SourceTask {
    /// - Returns: the problem when the record is too large for a message (the
    ///   caller dead-letters the source record), else nil.
    func routeToCounts(_ interaction: Interaction, record: RecordView, output: TaskOutput) -> BadInput? {
        let countAfter = interaction.action.isPositive ? users?.interactionCount(of: interaction.userId) : nil
        return send(.interaction(interaction, countAfter: countAfter, origin: origin(of: record)),
                    user: interaction.userId, what: "the interaction for the counts stage", output: output)
    }

    /// The impression from its ids read in place (no `Impression`, no
    /// `String` per shown item).
    func routeToCounts(impression ids: EventIds, ts: EventTimeMs, count: Int, hasPositions: Bool,
                       record: RecordView, output: TaskOutput) -> BadInput? {
        CountStageRecord.withEncodedImpression(userId: ids.user, ts: ts, requestId: ids.requestId, count: count,
                                               shownItem: ids.shownItem,
                                               positions: hasPositions ? ids.positionValues : nil,
                                               origin: origin(of: record)) { bytes in
            guard bytes.count <= output.maxRepartitionRecordBytes else {
                return Self.tooLarge("the impression for the counts stage", bytes.count, output)
            }
            output.repartition(.counts, keyBytes: ids.user, value: bytes)
            return nil
        }
    }

    private func send(_ countRecord: CountStageRecord, user: String, what: String, output: TaskOutput) -> BadInput? {
        let bytes = countRecord.encoded()
        guard bytes.count <= output.maxRepartitionRecordBytes else { return Self.tooLarge(what, bytes.count, output) }
        output.repartition(.counts, key: user, value: bytes)
        return nil
    }
}
