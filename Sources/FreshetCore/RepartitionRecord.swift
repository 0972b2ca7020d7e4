/// The value of a message on a repartition topic (`<group>-items-repartition`,
/// `<group>-users-repartition`).
///
/// Wire format (version 1): `[format=1][tag]` then the payload. Tags:
/// 1 = item event, 2 = interaction, 3 = watermark marker, 4 = the shown items
/// of one impression bound for one item partition (`ImpressionItemsRecord`,
/// read with `decodeEach` or `forEachItemView`: it stands for several item
/// events). Decoding refuses other format versions, so a rolling upgrade that
/// changes the format must bump it.
///
/// Optional trailing extensions of an item event (each written only when
/// present, in this order): `[ext=1][count varint][string]*` = the user's
/// recent positive items (`ItemEvent.userHistory`); `[ext=2][zigzag]` = the
/// user's `interaction_count` as of the impression (`ItemEvent.interactionCount`,
/// stamped by the counts stage on its join copies until the join moved there;
/// still read); `[ext=3][zigzag]` = how far past its `ts` a late event is
/// known (`ItemEvent.knownAtMs − ts`: a late event's item records with the
/// examples through the counts stage). A record without them decodes with an empty history, no
/// count and no known-at time.
package enum RepartitionRecord: Sendable, Equatable {
    case item(ItemEvent, origin: RecordOrigin)
    case interaction(Interaction, origin: RecordOrigin)
    case watermark(WatermarkMarker)

    package static let formatVersion: UInt8 = 1

    enum Tag: UInt8 { case item = 1, interaction = 2, watermark = 3, impressionItems = 4, countedImpressionItems = 5 }
    enum ItemExtension {
        static let userHistory: UInt8 = 1
        static let interactionCount: UInt8 = 2
        static let knownAt: UInt8 = 3
    }

    package func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        encode(into: &w)
        return w.bytes
    }

    package func encode(into w: inout ByteWriter) {
        // One bounded scratch write and one append per record: this runs for every
        // routed item event (several per source event).
        let v = RawByteCursor.maxVarintBytes
        switch self {
        case .item(let e, let origin):
            var itemId = e.itemId, userId = e.userId
            itemId.withUTF8 { item in
                userId.withUTF8 { user in
                    if var requestId = e.requestId {
                        requestId.withUTF8 { request in
                            Self.encodeItem(itemId: UnsafeRawBufferPointer(item), userId: UnsafeRawBufferPointer(user),
                                            ts: e.ts, kind: e.kind, requestId: UnsafeRawBufferPointer(request),
                                            origin: origin, userHistoryEncoded: e.userHistoryEncoded,
                                            interactionCount: e.interactionCount, knownAtMs: e.knownAtMs, into: &w)
                        }
                    } else {
                        Self.encodeItem(itemId: UnsafeRawBufferPointer(item), userId: UnsafeRawBufferPointer(user),
                                        ts: e.ts, kind: e.kind, requestId: nil,
                                        origin: origin, userHistoryEncoded: e.userHistoryEncoded,
                                        interactionCount: e.interactionCount, knownAtMs: e.knownAtMs, into: &w)
                    }
                }
            }
        case .interaction(let i, let origin):
            let bound = 8 + 4 * v + RawByteCursor.maxBytes(i.userId) + RawByteCursor.maxBytes(i.itemId)
                + (i.requestId.map(RawByteCursor.maxBytes) ?? 0) + RecordOrigin.maxEncodedBytes
            w.append(maxBytes: bound) { c in
                c.write(byte: Self.formatVersion)
                c.write(byte: Tag.interaction.rawValue)
                c.write(string: i.userId)
                c.write(string: i.itemId)
                c.write(byte: i.action.rawValue)
                c.write(optionalZigzag: i.dwellMs)
                c.write(zigzag: i.ts)
                c.write(optionalString: i.requestId)
                origin.encode(into: &c)
            }
        case .watermark(let m):
            w.append(maxBytes: 8 + 3 * v) { c in
                c.write(byte: Self.formatVersion)
                c.write(byte: Tag.watermark.rawValue)
                c.write(byte: m.sourceTopic)
                c.write(zigzag: Int64(m.sourcePartition))
                c.write(optionalZigzag: m.watermarkMs)
                c.write(byte: m.finished ? 1 : 0)
            }
        }
    }

    /// Appends an item event record from its fields, ids given as UTF-8
    /// bytes: `.item` records encode through it (`writeItem` writes the bytes).
    @inline(__always)
    package static func encodeItem(itemId: UnsafeRawBufferPointer, userId: UnsafeRawBufferPointer, ts: EventTimeMs,
                                   kind: ItemEvent.Kind, requestId: UnsafeRawBufferPointer?, origin: RecordOrigin,
                                   userHistoryEncoded: [UInt8], interactionCount: Int64? = nil,
                                   knownAtMs: EventTimeMs? = nil, into w: inout ByteWriter) {
        // One bounded scratch write and one append per record.
        let bound = itemMaxBytes(itemId: itemId, userId: userId, requestId: requestId,
                                 userHistoryEncoded: userHistoryEncoded, interactionCount: interactionCount,
                                 knownAtMs: knownAtMs)
        w.append(maxBytes: bound) { c in
            writeItem(itemId: itemId, userId: userId, ts: ts, kind: kind, requestId: requestId, origin: origin,
                      userHistoryEncoded: userHistoryEncoded, interactionCount: interactionCount,
                      knownAtMs: knownAtMs, into: &c)
        }
    }

    /// An upper bound of what `writeItem` writes for these fields.
    @inline(__always)
    package static func itemMaxBytes(itemId: UnsafeRawBufferPointer, userId: UnsafeRawBufferPointer,
                                     requestId: UnsafeRawBufferPointer?, userHistoryEncoded: [UInt8],
                                     interactionCount: Int64? = nil, knownAtMs: EventTimeMs? = nil) -> Int {
        let v = RawByteCursor.maxVarintBytes
        return 8 + 8 * v + itemId.count + userId.count + (requestId?.count ?? 0) + RecordOrigin.maxEncodedBytes
            + (userHistoryEncoded.isEmpty ? 0 : 1 + userHistoryEncoded.count)
            + (interactionCount == nil ? 0 : 1 + v)
            + (knownAtMs == nil ? 0 : 1 + v)
    }

    /// Writes an item event record from its fields, ids given as UTF-8 bytes:
    /// the one encoder of item events. A source task calls it with the ids
    /// where the decoder found them and a cursor over scratch space of
    /// `itemMaxBytes` (building no `ItemEvent`, `String` or array).
    @inline(__always)
    package static func writeItem(itemId: UnsafeRawBufferPointer, userId: UnsafeRawBufferPointer, ts: EventTimeMs,
                                  kind: ItemEvent.Kind, requestId: UnsafeRawBufferPointer?, origin: RecordOrigin,
                                  userHistoryEncoded: [UInt8], interactionCount: Int64? = nil, knownAtMs: EventTimeMs? = nil,
                                  into c: inout RawByteCursor) {
        c.write(byte: formatVersion)
        c.write(byte: Tag.item.rawValue)
        c.write(bytes: itemId)
        c.write(bytes: userId)
        c.write(zigzag: ts)
        switch kind {
        case .interaction(let action, let dwell):
            c.write(byte: 1)
            c.write(byte: action.rawValue)
            c.write(optionalZigzag: dwell)
        case .impression(let position):
            c.write(byte: 2)
            c.write(optionalZigzag: position.map(Int64.init))
        }
        c.write(optionalBytes: requestId)
        origin.encode(into: &c)
        if !userHistoryEncoded.isEmpty {
            c.write(byte: ItemExtension.userHistory)
            c.write(raw: userHistoryEncoded)
        }
        if let interactionCount {
            c.write(byte: ItemExtension.interactionCount)
            c.write(zigzag: interactionCount)
        }
        if let knownAtMs {
            c.write(byte: ItemExtension.knownAt)
            c.write(zigzag: knownAtMs &- ts)
        }
    }

    /// Decodes in place (the bytes are read, not copied).
    package static func decode(_ bytes: UnsafeRawBufferPointer) throws(CodecError) -> RepartitionRecord {
        var r = BorrowedByteReader(bytes)
        return try decode(from: &r)
    }

    package static func decode(_ bytes: [UInt8]) throws(CodecError) -> RepartitionRecord {
        let result: Result<RepartitionRecord, CodecError> = bytes.withUnsafeBytes { buf in
            Result { () throws(CodecError) in try decode(buf) }
        }
        return try result.get()
    }

    /// An item event's kind byte and its fields (shared by `decode` and `itemView`).
    @inline(__always)
    static func readItemKind(_ r: inout BorrowedByteReader) throws(CodecError) -> ItemEvent.Kind {
        switch try r.readByte("item_event.kind") {
        case 1:
            let action = try readAction(&r, "item_event.action")
            return .interaction(action, dwellMs: try r.readOptionalZigzag("item_event.dwell_ms"))
        case 2:
            let p = try r.readOptionalZigzag("item_event.position")
            guard p.map({ Int32(exactly: $0) != nil }) ?? true else {
                throw CodecError(.invalidValue, "item_event.position out of Int32 range")
            }
            return .impression(position: p.map { Int32($0) })
        case let other:
            throw CodecError(.invalidTag, "item_event.kind \(other)")
        }
    }

    /// The optional user-history extension at the end of an item event: the
    /// encoded history (count varint, then length-prefixed items), borrowed;
    /// empty when the record has none. The structure is checked, the item
    /// bytes are not UTF-8-validated (shared by `decode` and `itemView`).
    @inline(__always)
    static func readUserHistoryExtension(_ r: inout BorrowedByteReader) throws(CodecError) -> UnsafeRawBufferPointer {
        try readItemExtensions(&r).history
    }

    /// The optional extensions of an item event, in their order: the encoded
    /// history (borrowed; empty when absent), the stamped interaction count,
    /// and how far past `ts` a late event is known.
    @inline(__always)
    static func readItemExtensions(_ r: inout BorrowedByteReader) throws(CodecError)
        -> (history: UnsafeRawBufferPointer, interactionCount: Int64?, knownAfterMs: Int64?) {
        var history = UnsafeRawBufferPointer(start: nil, count: 0)
        var interactionCount: Int64?
        guard !r.isAtEnd else { return (history, nil, nil) }
        var ext = try r.readByte("item_event.extension")
        if ext == ItemExtension.userHistory {
            let start = r.position
            let count = try r.readVarint("item_event.user_history.count")
            guard count <= UInt64(r.remaining) else { throw CodecError(.invalidValue, "item_event.user_history.count \(count)") }
            for _ in 0..<Int(count) { _ = try r.readBytes("item_event.user_history.item") }
            history = UnsafeRawBufferPointer(rebasing: r.bytes[start..<r.position])
            guard !r.isAtEnd else { return (history, nil, nil) }
            ext = try r.readByte("item_event.extension")
        }
        if ext == ItemExtension.interactionCount {
            interactionCount = try r.readZigzag("item_event.interaction_count")
            guard !r.isAtEnd else { return (history, interactionCount, nil) }
            ext = try r.readByte("item_event.extension")
        }
        guard ext == ItemExtension.knownAt else { throw CodecError(.invalidTag, "item_event.extension \(ext)") }
        return (history, interactionCount, try readKnownAfter(&r, "item_event.known_at"))
    }

    /// How far past its event time a late event is known (a zigzag, always
    /// > 0): the item event's extension 3 and the counts stage records' trailing field.
    /// - Throws: `CodecError` when truncated or not positive.
    @inline(__always)
    package static func readKnownAfter(_ r: inout BorrowedByteReader, _ field: String) throws(CodecError) -> Int64 {
        let after = try r.readZigzag(field)
        guard after > 0 else { throw CodecError(.invalidValue, "\(field) \(after) ms after ts (must be later)") }
        return after
    }

    static func decode(from r: inout BorrowedByteReader) throws(CodecError) -> RepartitionRecord {
        try readFormatVersion(&r)
        let tagByte = try r.readByte("repartition record tag")
        guard let tag = Tag(rawValue: tagByte) else {
            throw CodecError(.invalidTag, "repartition record tag \(tagByte)")
        }
        let record: RepartitionRecord
        switch tag {
        case .item:
            let itemId = try r.readString("item_event.item_id")
            let userId = try r.readString("item_event.user_id")
            let ts = try r.readZigzag("item_event.ts")
            let kind = try readItemKind(&r)
            let requestId = try r.readOptionalString("item_event.request_id")
            let origin = try RecordOrigin.decode(from: &r)
            // Kept encoded (ids are bytes; the item stage never needs Strings).
            let extensions = try readItemExtensions(&r)
            var event = ItemEvent(itemId: itemId, userId: userId, ts: ts, kind: kind, requestId: requestId)
            event.userHistoryEncoded = Array(extensions.history)
            event.interactionCount = extensions.interactionCount
            event.knownAtMs = extensions.knownAfterMs.map { ts &+ $0 }
            record = .item(event, origin: origin)
        case .interaction:
            let userId = try r.readString("interaction.user_id")
            let itemId = try r.readString("interaction.item_id")
            let action = try readAction(&r, "interaction.action")
            let dwell = try r.readOptionalZigzag("interaction.dwell_ms")
            let ts = try r.readZigzag("interaction.ts")
            let requestId = try r.readOptionalString("interaction.request_id")
            let origin = try RecordOrigin.decode(from: &r)
            record = .interaction(Interaction(userId: userId, itemId: itemId, action: action, dwellMs: dwell,
                                              ts: ts, requestId: requestId), origin: origin)
        case .impressionItems, .countedImpressionItems:
            throw CodecError(.invalidTag, "repartition record tag \(tag.rawValue) (several item events): read it with decodeEach")
        case .watermark:
            let topic = try r.readByte("watermark.source_topic")
            let partition = try readInt32(&r, "watermark.source_partition")
            let wm = try r.readOptionalZigzag("watermark.watermark_ms")
            let finished = try r.readByte("watermark.finished")
            guard finished <= 1 else { throw CodecError(.invalidValue, "watermark.finished flag \(finished)") }
            record = .watermark(WatermarkMarker(sourceTopic: topic, sourcePartition: partition,
                                                watermarkMs: wm, finished: finished == 1))
        }
        try r.expectEnd("repartition record")
        return record
    }

    static func readAction(_ r: inout BorrowedByteReader, _ context: String) throws(CodecError) -> Action {
        let raw = try r.readByte(context)
        guard let a = Action(rawValue: raw) else { throw CodecError(.invalidValue, "\(context) code \(raw)") }
        return a
    }

    static func readInt32(_ r: inout BorrowedByteReader, _ context: String) throws(CodecError) -> Int32 {
        let v = try r.readZigzag(context)
        guard let v32 = Int32(exactly: v) else { throw CodecError(.invalidValue, "\(context) out of Int32 range") }
        return v32
    }
}

extension RecordOrigin {
    /// The most bytes `encode(into:)` writes. Computed, not stored, so that
    /// the inlined `ImpressionItemsRecord.maxBytes` reads no lazily
    /// initialised global.
    @inlinable
    public static var maxEncodedBytes: Int { 1 + 3 * RawByteCursor.maxVarintBytes }

    /// Source topic byte, partition and offset (zigzag), sub-index (varint):
    /// the origin of every repartition and counts record.
    @inline(__always)
    package func encode(into c: inout RawByteCursor) {
        c.write(byte: sourceTopic)
        c.write(zigzag: Int64(partition))
        c.write(zigzag: offset)
        c.write(varint: UInt64(subIndex))
    }

    /// Reads an origin written by `encode(into:)` (the repartition records'
    /// and the counts stage's records share it).
    package static func decode(from r: inout BorrowedByteReader) throws(CodecError) -> RecordOrigin {
        let topic = try r.readByte("origin.source_topic")
        let partition = try RepartitionRecord.readInt32(&r, "origin.partition")
        let offset = try r.readZigzag("origin.offset")
        let sub = try r.readVarint("origin.sub_index")
        // A varint on the wire: records written when the field was 16 bits read the same.
        guard let sub32 = UInt32(exactly: sub) else { throw CodecError(.invalidValue, "origin.sub_index \(sub)") }
        return RecordOrigin(sourceTopic: topic, partition: partition, offset: offset, subIndex: sub32)
    }
}
