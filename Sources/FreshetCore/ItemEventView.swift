/// What the item features need of a repartitioned item event, read in place:
/// the item id as borrowed bytes (checked to be valid UTF-8), the event time,
/// the kind, and the origin for duplicate filtering. The user id and request
/// id are checked (lengths, UTF-8) but not built; the user history's items
/// only for their lengths, as `RepartitionRecord.decode` does (they are kept
/// as bytes and matched against item ids byte for byte). Reading a record
/// allocates nothing. Valid only while the record's bytes are.
package struct ItemEventView {
    package var itemId: UnsafeRawBufferPointer
    package var ts: EventTimeMs
    package var kind: ItemEvent.Kind
    package var origin: RecordOrigin
    /// The user history section as encoded (`ItemEvent.userHistoryEncoded`'s
    /// form: count, then length-prefixed items); empty when the record has none.
    /// Walk it with `ItemEvent.forEachHistoryItem(inEncoded:_:)`.
    package var userHistory: UnsafeRawBufferPointer
}

extension RepartitionRecord {
    /// Reads an item event record as an `ItemEventView`; nil when the record
    /// is of another kind (read those with `decode`). Accepts and rejects
    /// exactly the records `decode` does, with the same errors.
    package static func itemView(_ bytes: UnsafeRawBufferPointer) throws(CodecError) -> ItemEventView? {
        var r = BorrowedByteReader(bytes)
        try readFormatVersion(&r)
        guard try r.readByte("repartition record tag") == Tag.item.rawValue else { return nil }
        return try readItemView(&r)
    }

    /// An item event record's fields as a view, read after its format byte and tag.
    @inline(__always)
    static func readItemView(_ r: inout BorrowedByteReader) throws(CodecError) -> ItemEventView {
        let itemId = try r.readUTF8("item_event.item_id")
        try r.skipString("item_event.user_id")
        let ts = try r.readZigzag("item_event.ts")
        let kind = try readItemKind(&r)
        try r.skipOptionalString("item_event.request_id")
        let origin = try RecordOrigin.decode(from: &r)
        let history = try readUserHistoryExtension(&r)
        try r.expectEnd("repartition record")
        return ItemEventView(itemId: itemId, ts: ts, kind: kind, origin: origin, userHistory: history)
    }
}
