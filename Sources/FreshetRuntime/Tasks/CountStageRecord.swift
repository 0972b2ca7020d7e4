import FreshetCore

/// A record of `<group>-counts-repartition`, the counts stage's input (keyed
/// by user; see `CountTask`).
///
/// Wire format, in the family of `RepartitionRecord` (same format byte, tags
/// that it does not use; markers are `RepartitionRecord`'s own bytes, so a
/// source task broadcasts one encoding to every stage):
/// - tag 4, interaction: user, item (strings), action byte, optional dwell,
///   ts (zigzag), optional request id, `countAfter` (optional zigzag: the
///   user's `interaction_count` after this positive, absent for a skip),
///   then the origin (source topic byte, partition, offset, sub-index);
/// - tag 6, an impression's shown items of one item partition with their
///   features as of the impression, from an item task (`ImpressionFeaturesPart`);
/// - tag 3, watermark marker (`RepartitionRecord.watermark`), from the
///   interactions tasks and the item tasks.
///
/// Tag 4 ends, for a late event only, with the zigzag of how far past its
/// ts it is known (`knownAt − ts`, > 0; `BoundedOutOfOrdernessWatermark.knownAt`):
/// an on-time event's bytes are as before the field existed. Tag 5 (an
/// impression from its source task, before the item tasks sent its
/// features instead) is no longer read.
package enum CountStageRecord: Sendable, Equatable {
    case interaction(Interaction, countAfter: Int64?, origin: RecordOrigin, knownAt: EventTimeMs? = nil)
    case impressionFeatures(ImpressionFeaturesPart)
    case watermark(WatermarkMarker)

    static let interactionTag: UInt8 = 4

    package func encode(into w: inout ByteWriter) {
        switch self {
        case .interaction(let i, let countAfter, let origin, let knownAt):
            w.write(byte: RepartitionRecord.formatVersion)
            w.write(byte: Self.interactionTag)
            w.write(string: i.userId)
            w.write(string: i.itemId)
            w.write(byte: i.action.rawValue)
            w.write(optionalZigzag: i.dwellMs)
            w.write(zigzag: i.ts)
            w.write(optionalString: i.requestId)
            w.write(optionalZigzag: countAfter)
            Self.write(origin, into: &w)
            if let knownAt { w.write(zigzag: knownAt &- i.ts) }
        case .impressionFeatures(let part):
            part.encode(into: &w)
        case .watermark(let marker):
            w.bytes.append(contentsOf: RepartitionRecord.watermark(marker).encoded())
        }
    }

    package func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        encode(into: &w)
        return w.bytes
    }

    /// Decodes one record (not a bundle).
    /// - Throws: `CodecError` for a truncated or unknown record.
    package static func decode(_ bytes: UnsafeRawBufferPointer) throws(CodecError) -> CountStageRecord {
        var r = BorrowedByteReader(bytes)
        let version = try r.readByte("counts record format byte")
        guard version == RepartitionRecord.formatVersion else {
            throw CodecError(.unknownVersion, "counts record format \(version); this build reads format \(RepartitionRecord.formatVersion)")
        }
        let tag = try r.readByte("counts record tag")
        let record: CountStageRecord
        switch tag {
        case interactionTag:
            let userId = try r.readString("counts.interaction.user_id")
            let itemId = try r.readString("counts.interaction.item_id")
            let raw = try r.readByte("counts.interaction.action")
            guard let action = Action(rawValue: raw) else { throw CodecError(.invalidValue, "counts.interaction.action code \(raw)") }
            let dwell = try r.readOptionalZigzag("counts.interaction.dwell_ms")
            let ts = try r.readZigzag("counts.interaction.ts")
            let requestId = try r.readOptionalString("counts.interaction.request_id")
            let countAfter = try r.readOptionalZigzag("counts.interaction.count_after")
            let origin = try RecordOrigin.decode(from: &r)
            record = .interaction(Interaction(userId: userId, itemId: itemId, action: action, dwellMs: dwell, ts: ts,
                                              requestId: requestId), countAfter: countAfter, origin: origin,
                                  knownAt: try readKnownAt(&r, ts: ts))
        case ImpressionFeaturesPart.tag:
            record = .impressionFeatures(try ImpressionFeaturesPart.decodeBody(&r))
        default:
            if case .watermark(let marker) = try RepartitionRecord.decode(bytes) { return .watermark(marker) }
            throw CodecError(.invalidTag, "counts record tag \(tag)")
        }
        try r.expectEnd("counts record")
        return record
    }

    /// The trailing known-at field of a late event, nil when absent.
    private static func readKnownAt(_ r: inout BorrowedByteReader, ts: EventTimeMs) throws(CodecError) -> EventTimeMs? {
        guard !r.isAtEnd else { return nil }
        return ts &+ (try RepartitionRecord.readKnownAfter(&r, "counts record known_at"))
    }

    /// An interaction's record (`.interaction`'s bytes, exactly) written from
    /// ids read in place into scratch space, handed to `body` while it lasts.
    static func withEncodedInteraction(userId: UnsafeRawBufferPointer, itemId: UnsafeRawBufferPointer,
                                          action: Action, dwellMs: Int64?, ts: EventTimeMs,
                                          requestId: UnsafeRawBufferPointer?, countAfter: Int64?,
                                          origin: RecordOrigin, knownAt: EventTimeMs? = nil,
                                          _ body: (UnsafeRawBufferPointer) -> Void) {
        let v = RawByteCursor.maxVarintBytes
        let bound = 8 + userId.count + itemId.count + (requestId?.count ?? 0) + 10 * v
        RawByteCursor.withScratch(capacity: bound, write: { c in
            c.write(byte: RepartitionRecord.formatVersion)
            c.write(byte: interactionTag)
            c.write(bytes: userId)
            c.write(bytes: itemId)
            c.write(byte: action.rawValue)
            c.write(optionalZigzag: dwellMs)
            c.write(zigzag: ts)
            c.write(optionalBytes: requestId)
            c.write(optionalZigzag: countAfter)
            origin.encode(into: &c)
            if let knownAt { c.write(zigzag: knownAt &- ts) }
        }, body)
    }

    private static func write(_ origin: RecordOrigin, into w: inout ByteWriter) {
        w.append(maxBytes: RecordOrigin.maxEncodedBytes) { origin.encode(into: &$0) }
    }
}
