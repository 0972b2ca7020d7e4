import FreshetCore

/// What an item task sends the counts stage for one impression: the shown
/// items of it that its partition owns, each with the item's features as of
/// the impression (docs/EMBEDDINGS.md, "The join in the counts stage"). The
/// counts task of the impression's user puts an impression's parts together
/// (by `source`, the impression's own place in its source topic) and joins it
/// once its watermark passes `knownFrom`: by then every item partition has
/// sent its part, each sent before the marker that moved it past `knownFrom`.
///
/// Wire format (in `CountStageRecord`'s family, tag 6):
///
///     [format][tag=6][sender partition zigzag][flags byte][user_id][ts zigzag][request_id optional]
///     [source topic byte][source partition zigzag][source offset zigzag]
///     [known_from − ts zigzag][count varint]
///     count × ([index varint][item_id][position optional zigzag]
///              [popularity_7d zigzag][impressions_7d zigzag])
///
/// `sender` is the item partition that sent it (its markers say how far it
/// has sent). Flag bit 0, `behindSendersWatermark`: evaluated at arrival,
/// the sender's watermark already past `knownFrom` (a source partition left
/// out of it as idle): not a replay's copy, though its sender's markers say
/// it has sent everything known by then. `index` is the item's place in the impression's list of shown items (its
/// records' sub-index): parts merge by it, and a part sent twice (an item
/// task's replay after a crash) adds nothing.
package struct ImpressionFeaturesPart: Sendable, Equatable {
    /// One shown item with its features as of the impression.
    package struct Item: Sendable, Equatable {
        package var index: UInt32
        package var itemId: String
        package var position: Int32?
        package var popularity7d: Int64
        package var impressions7d: Int64

        package init(index: UInt32, itemId: String, position: Int32?, popularity7d: Int64, impressions7d: Int64) {
            self.index = index
            self.itemId = itemId
            self.position = position
            self.popularity7d = popularity7d
            self.impressions7d = impressions7d
        }

        /// Writes `items` as a count, then each item's index, id, position
        /// and the two counts: the layout of a part on the wire and of a
        /// held impression in the counts task's checkpoint entry.
        static func encode(_ items: [Item], into w: inout ByteWriter) {
            w.write(varint: UInt64(items.count))
            for item in items {
                w.write(varint: UInt64(item.index))
                w.write(string: item.itemId)
                w.write(optionalZigzag: item.position.map(Int64.init))
                w.write(zigzag: item.popularity7d)
                w.write(zigzag: item.impressions7d)
            }
        }
    }

    /// The item partition that evaluated and sent it.
    package var senderPartition: Int32
    /// Evaluated at arrival, behind the watermark its sender had already
    /// reached (idleness): the counts stage takes it whatever that watermark.
    package var behindSendersWatermark = false
    package var userId: String
    package var ts: EventTimeMs
    package var requestId: String?
    /// The impression's source topic, partition and offset (`subIndex` unused).
    package var source: RecordOrigin
    /// When the impression is known from (its ts when on time).
    package var knownFrom: EventTimeMs
    package var items: [Item]

    package init(senderPartition: Int32, userId: String, ts: EventTimeMs, requestId: String?, source: RecordOrigin,
                 knownFrom: EventTimeMs, items: [Item]) {
        self.senderPartition = senderPartition
        self.userId = userId
        self.ts = ts
        self.requestId = requestId
        self.source = RecordOrigin(sourceTopic: source.sourceTopic, partition: source.partition, offset: source.offset)
        self.knownFrom = knownFrom
        self.items = items
    }

    /// The sender as the counts task names its inputs.
    package var sender: DuplicateFilter.Source? {
        TaskId.Stage.items.originCode.map { DuplicateFilter.Source(topic: $0, partition: senderPartition) }
    }

    /// Whether `other` is a part of the same impression (same source record).
    package func isPart(of other: ImpressionFeaturesPart) -> Bool {
        source == other.source && ts == other.ts && knownFrom == other.knownFrom
            && behindSendersWatermark == other.behindSendersWatermark
    }

    static let tag: UInt8 = 6

    package func encode(into w: inout ByteWriter) {
        w.write(byte: RepartitionRecord.formatVersion)
        w.write(byte: Self.tag)
        w.write(zigzag: Int64(senderPartition))
        w.write(byte: behindSendersWatermark ? 1 : 0)
        w.write(string: userId)
        w.write(zigzag: ts)
        w.write(optionalString: requestId)
        w.write(byte: source.sourceTopic)
        w.write(zigzag: Int64(source.partition))
        w.write(zigzag: source.offset)
        w.write(zigzag: knownFrom &- ts)
        Item.encode(items, into: &w)
    }

    /// Reads the record after its format byte and tag.
    /// - Throws: `CodecError` for a truncated or invalid record.
    static func decodeBody(_ r: inout BorrowedByteReader) throws(CodecError) -> ImpressionFeaturesPart {
        guard let sender = Int32(exactly: try r.readZigzag("features.sender")) else {
            throw CodecError(.invalidValue, "features.sender")
        }
        let flags = try r.readByte("features.flags")
        guard flags & ~1 == 0 else { throw CodecError(.invalidValue, "features.flags \(flags)") }
        let userId = try r.readString("features.user_id")
        let ts = try r.readZigzag("features.ts")
        let requestId = try r.readOptionalString("features.request_id")
        let topic = try r.readByte("features.source_topic")
        guard let partition = Int32(exactly: try r.readZigzag("features.source_partition")) else {
            throw CodecError(.invalidValue, "features.source_partition")
        }
        let offset = try r.readZigzag("features.source_offset")
        let knownAfter = try r.readZigzag("features.known_from")
        guard knownAfter >= 0 else { throw CodecError(.invalidValue, "features.known_from before ts") }
        let n = try r.readVarint("features.items")
        guard n <= UInt64(r.remaining) else { throw CodecError(.invalidValue, "features.items \(n)") }
        var items: [Item] = []
        items.reserveCapacity(Int(n))
        for _ in 0..<n {
            guard let index = UInt32(exactly: try r.readVarint("features.item.index")) else {
                throw CodecError(.invalidValue, "features.item.index")
            }
            let itemId = try r.readString("features.item.id")
            var position: Int32?
            if let p = try r.readOptionalZigzag("features.item.position") {
                guard let p32 = Int32(exactly: p) else { throw CodecError(.invalidValue, "features.item.position \(p)") }
                position = p32
            }
            items.append(Item(index: index, itemId: itemId, position: position,
                              popularity7d: try r.readZigzag("features.item.popularity_7d"),
                              impressions7d: try r.readZigzag("features.item.impressions_7d")))
        }
        var part = ImpressionFeaturesPart(senderPartition: sender, userId: userId, ts: ts, requestId: requestId,
                                          source: RecordOrigin(sourceTopic: topic, partition: partition, offset: offset),
                                          knownFrom: ts &+ knownAfter, items: items)
        part.behindSendersWatermark = flags & 1 == 1
        return part
    }
}
