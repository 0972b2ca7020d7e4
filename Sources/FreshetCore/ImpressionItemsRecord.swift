/// The shown items of one impression that route to the same item partition,
/// in one repartition record (tag 4, `RepartitionRecord.Tag.impressionItems`).
///
/// An impression fans out to one item event per shown item, and every one
/// of them repeated the impression's user id, time, request id and source
/// position: about 50 bytes a shown item, of which the item id was 8. Shown
/// items are 85% of the item events on a recommender's stream, so the
/// repartition topic carried more bytes than the source topics. One record
/// per (impression, item partition) carries those fields once:
///
///     [format=1][tag=4][user_id][ts zigzag][request_id optional]
///     [origin.source_topic][origin.partition zigzag][origin.offset zigzag]
///     [count varint] count × ([item_id][position optional zigzag][sub_index varint])
///
/// The counts stage's join copies of an impression (tag 5,
/// `countedImpressionItems`; sent to the item tasks until the join moved to
/// the counts stage, still read) have the same layout with the user's
/// `interaction_count` as of the impression after the origin:
///
///     ... [origin.offset zigzag][interaction_count zigzag][count varint] ...
///
/// and stand for item event records carrying that count (extension 2).
///
/// Strings are a varint length and UTF-8 bytes. The record means exactly the
/// `count` item events `RepartitionRecord.item` records it replaces (same
/// fields, same origins, in increasing `sub_index`), so duplicate filtering
/// and every feature are unchanged; readers expand it
/// (`RepartitionRecord.forEachItemView`, `RepartitionRecord.decodeEach`).
/// Readers before this record refuse tag 4 (see docs/OPERATIONS.md,
/// "Repartition format and upgrades").
///
/// The encoder (`withEncoded`, `write`, `maxBytes`) is `@inlinable public`
/// (docs/ARCHITECTURE.md, "Modules"): as `package`, it was not inlined into
/// the source task, so every shown item cost three calls through closure
/// contexts (its id twice, its position once) and the record's group one.
public enum ImpressionItemsRecord {
    /// One shown item of the group: its id bytes, position in the impression
    /// (nil when the impression carried none) and index among the shown items.
    public typealias Item = (id: UnsafeRawBufferPointer, position: Int32?, subIndex: UInt32)

    /// The format byte and tags `write` puts first (`RepartitionRecord`'s,
    /// which is not public): functions, read once per record.
    @usableFromInline static var formatVersion: UInt8 { RepartitionRecord.formatVersion }
    @usableFromInline static var impressionItemsTag: UInt8 { RepartitionRecord.Tag.impressionItems.rawValue }
    @usableFromInline static var countedImpressionItemsTag: UInt8 {
        RepartitionRecord.Tag.countedImpressionItems.rawValue
    }

    /// An upper bound of the bytes `write` produces: the shared fields plus,
    /// per item, `itemIdBytes` in total and three varints.
    @inlinable @inline(__always)
    public static func maxBytes(userId: UnsafeRawBufferPointer, requestId: UnsafeRawBufferPointer?,
                                 count: Int, itemIdBytes: Int) -> Int {
        let v = RawByteCursor.maxVarintBytes
        return 4 + 6 * v + userId.count + (requestId?.count ?? 0) + RecordOrigin.maxEncodedBytes
            + itemIdBytes + count * (1 + 3 * v)
    }

    /// Writes the record of the `count` items `item(0..<count)` (in the order
    /// given, which must be increasing `subIndex`). `source` gives the
    /// impression's source topic, partition and offset (its `subIndex` is not
    /// written); `interactionCount`, the counts stage's stamp (tag 5), nil
    /// for a source's record (tag 4). The cursor must have `maxBytes` of space.
    @inlinable @inline(__always)
    public static func write(userId: UnsafeRawBufferPointer, ts: EventTimeMs, requestId: UnsafeRawBufferPointer?,
                             source: RecordOrigin, interactionCount: Int64? = nil, count: Int, item: (Int) -> Item,
                             into c: inout RawByteCursor) {
        c.write(byte: formatVersion)
        c.write(byte: interactionCount == nil ? impressionItemsTag : countedImpressionItemsTag)
        c.write(bytes: userId)
        c.write(zigzag: ts)
        c.write(optionalBytes: requestId)
        c.write(byte: source.sourceTopic)
        c.write(zigzag: Int64(source.partition))
        c.write(zigzag: source.offset)
        if let interactionCount { c.write(zigzag: interactionCount) }
        c.write(varint: UInt64(count))
        for k in 0..<count {
            let shown = item(k)
            c.write(bytes: shown.id)
            c.write(optionalZigzag: shown.position.map(Int64.init))
            c.write(varint: UInt64(shown.subIndex))
        }
    }

    /// Encodes the shown items `members` (indices into the impression's
    /// items, increasing) into scratch space and calls `body` with the
    /// record's bytes (valid during the call): the one encoder a source task
    /// and the core benchmark share. `shownItem(k)` and `position(k)` are
    /// item `k`'s id bytes and position; its sub-index is `k`.
    @inlinable @inline(__always)
    public static func withEncoded(userId: UnsafeRawBufferPointer, ts: EventTimeMs, requestId: UnsafeRawBufferPointer?,
                                   source: RecordOrigin, interactionCount: Int64? = nil, members: UnsafeBufferPointer<Int>,
                                   shownItem: (Int) -> UnsafeRawBufferPointer, position: (Int) -> Int32?,
                                   _ body: (UnsafeRawBufferPointer) -> Void) {
        let idBytes = members.reduce(0) { $0 + shownItem($1).count }
        let bound = maxBytes(userId: userId, requestId: requestId, count: members.count, itemIdBytes: idBytes)
        RawByteCursor.withScratch(capacity: bound, write: { c in
            write(userId: userId, ts: ts, requestId: requestId, source: source, interactionCount: interactionCount,
                  count: members.count, item: { i in
                let k = members[i]
                return (shownItem(k), position(k), UInt32(k))
            }, into: &c)
        }, body)
    }

    /// Splits the shown items `0..<count` by partition: calls `body` once
    /// per partition they go to (in order of each partition's first item)
    /// with the partition and its item indices, increasing. `partition(k)`
    /// is item `k`'s partition (non-negative), asked once per item.
    @inline(__always)
    package static func forEachPartitionGroup(count: Int, partition: (Int) -> Int32,
                                              _ body: (Int32, UnsafeBufferPointer<Int>) -> Void) {
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: count) { partitions in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { members in
                for k in 0..<count { partitions[k] = partition(k) }
                for first in 0..<count where partitions[first] >= 0 {
                    let target = partitions[first]
                    var n = 0
                    for k in first..<count where partitions[k] == target {
                        members[n] = k
                        n += 1
                        partitions[k] = -1 // grouped
                    }
                    body(target, UnsafeBufferPointer(rebasing: members[0..<n]))
                }
            }
        }
    }

    /// The shared fields of a record, read after its format byte and tag
    /// (ids as valid UTF-8 in the record's bytes).
    package struct Header {
        package var userId: UnsafeRawBufferPointer
        package var ts: EventTimeMs
        package var requestId: UnsafeRawBufferPointer?
        /// The origin of the record; an item's origin is this with its `subIndex`.
        package var source: RecordOrigin
        /// The counts stage's stamp (tag 5); nil in a source's record (tag 4).
        package var interactionCount: Int64?
        package var count: Int
    }

    /// `counted`: a tag-5 record (an `interaction_count` follows the origin).
    static func readHeader(_ r: inout BorrowedByteReader, counted: Bool) throws(CodecError) -> Header {
        let userId = try r.readUTF8("impression_items.user_id")
        let ts = try r.readZigzag("impression_items.ts")
        let requestId: UnsafeRawBufferPointer?
        switch try r.readByte("impression_items.request_id flag") {
        case 0: requestId = nil
        case 1: requestId = try r.readUTF8("impression_items.request_id")
        case let flag: throw CodecError(.invalidValue, "impression_items.request_id flag \(flag)")
        }
        let topic = try r.readByte("impression_items.origin.source_topic")
        let partition = try RepartitionRecord.readInt32(&r, "impression_items.origin.partition")
        let offset = try r.readZigzag("impression_items.origin.offset")
        let interactionCount = counted ? try r.readZigzag("impression_items.interaction_count") : nil
        let count = try r.readVarint("impression_items.count")
        // Each item takes at least three bytes: a bound before any allocation.
        guard count > 0, count <= UInt64(r.remaining / 3) else {
            throw CodecError(.invalidValue, "impression_items.count \(count) with \(r.remaining) bytes left")
        }
        return Header(userId: userId, ts: ts, requestId: requestId,
                      source: RecordOrigin(sourceTopic: topic, partition: partition, offset: offset),
                      interactionCount: interactionCount, count: Int(count))
    }

    /// Reads one item of the group (`subIndex` must exceed `previous`, so
    /// the events keep the order the duplicate filter relies on).
    @inline(__always)
    static func readItem(_ r: inout BorrowedByteReader, after previous: UInt32?) throws(CodecError) -> Item {
        let id = try r.readUTF8("impression_items.item_id")
        let p = try r.readOptionalZigzag("impression_items.position")
        guard p.map({ Int32(exactly: $0) != nil }) ?? true else {
            throw CodecError(.invalidValue, "impression_items.position out of Int32 range")
        }
        let sub = try r.readVarint("impression_items.sub_index")
        guard let sub32 = UInt32(exactly: sub), previous.map({ sub32 > $0 }) ?? true else {
            throw CodecError(.invalidValue, "impression_items.sub_index \(sub) after \(previous.map(String.init) ?? "none")")
        }
        return (id, p.map { Int32($0) }, sub32)
    }

    /// Reads the `header.count` items that follow a header, to the record's
    /// end, handing each to `each` with its origin; throws at the first
    /// malformed one (callers apply nothing before the whole record is read).
    @inline(__always)
    static func readItems(_ r: inout BorrowedByteReader, _ header: Header,
                          _ each: (Int, Item, RecordOrigin) -> Void) throws(CodecError) {
        var previous: UInt32?
        for k in 0..<header.count {
            let item = try readItem(&r, after: previous)
            previous = item.subIndex
            var origin = header.source
            origin.subIndex = item.subIndex
            each(k, item, origin)
        }
        try r.expectEnd("repartition record")
    }

    /// Reads `bytes` as a grouped record (tag 4 or 5) in place and calls
    /// `body` once with its shared fields and its items (both valid during
    /// the call only), after the whole record has been read: a malformed
    /// record throws and calls nothing. Returns false, calling nothing, for
    /// a record of another kind. What an item task with the examples on
    /// reads: the same item events `RepartitionRecord.decodeEach` builds,
    /// without an `ItemEvent` and its `String`s per shown item.
    package static func withItems(of bytes: UnsafeRawBufferPointer,
                                  _ body: (Header, UnsafeBufferPointer<Item>) -> Void) throws(CodecError) -> Bool {
        guard bytes.count >= 2,
              bytes[1] == RepartitionRecord.Tag.impressionItems.rawValue
                || bytes[1] == RepartitionRecord.Tag.countedImpressionItems.rawValue else { return false }
        var r = BorrowedByteReader(bytes)
        try RepartitionRecord.readFormatVersion(&r)
        let counted = try r.readByte("repartition record tag") == RepartitionRecord.Tag.countedImpressionItems.rawValue
        let header = try readHeader(&r, counted: counted)
        // `Item` is a trivial type: the buffer needs no deinitialising.
        try withUnsafeTemporaryAllocation(of: Item.self, capacity: header.count) { items throws(CodecError) in
            guard let base = items.baseAddress else { return }
            try readItems(&r, header) { k, item, _ in (base + k).initialize(to: item) }
            body(header, UnsafeBufferPointer(items))
        }
        return true
    }

    /// Reads a whole record (after its format byte and tag) and calls `body`
    /// with each item event as a view, but only once every item has been
    /// read: a malformed record applies nothing (as a malformed single
    /// record does).
    static func forEachView(_ r: inout BorrowedByteReader, counted: Bool,
                            _ body: (ItemEventView) -> Void) throws(CodecError) {
        let header = try readHeader(&r, counted: counted)
        // `ItemEventView` is a trivial type: the buffer needs no deinitialising.
        try withUnsafeTemporaryAllocation(of: ItemEventView.self, capacity: header.count) { views throws(CodecError) in
            guard let base = views.baseAddress else { return }
            try readItems(&r, header) { k, item, origin in
                (base + k).initialize(to: ItemEventView(
                    itemId: item.id, ts: header.ts, kind: .impression(position: item.position), origin: origin,
                    userHistory: UnsafeRawBufferPointer(start: nil, count: 0)))
            }
            for view in views { body(view) }
        }
    }

    /// Calls `body` with the item event record each of a read record's items
    /// stands for (`withItems`'s header and items).
    static func forEachItemEvent(_ header: Header, _ items: UnsafeBufferPointer<Item>, _ body: (RepartitionRecord) -> Void) {
        let userId = BorrowedByteReader.string(validUTF8: header.userId)
        let requestId = header.requestId.map { BorrowedByteReader.string(validUTF8: $0) }
        for item in items {
            var origin = header.source
            origin.subIndex = item.subIndex
            var event = ItemEvent(itemId: BorrowedByteReader.string(validUTF8: item.id), userId: userId, ts: header.ts,
                                  kind: .impression(position: item.position), requestId: requestId)
            event.interactionCount = header.interactionCount
            body(.item(event, origin: origin))
        }
    }
}

extension RepartitionRecord {
    /// Calls `body` with each item event of an item-bearing record, read in
    /// place: one for an item event (`itemView`), each shown item for an
    /// `ImpressionItemsRecord`. Returns false, calling nothing, for the other
    /// kinds (read those with `decode`). A malformed record throws before
    /// `body` sees any of its events.
    package static func forEachItemView(_ bytes: UnsafeRawBufferPointer,
                                        _ body: (ItemEventView) -> Void) throws(CodecError) -> Bool {
        var r = BorrowedByteReader(bytes)
        try readFormatVersion(&r)
        switch try r.readByte("repartition record tag") {
        case Tag.item.rawValue:
            body(try readItemView(&r))
            return true
        case Tag.impressionItems.rawValue:
            try ImpressionItemsRecord.forEachView(&r, counted: false, body)
            return true
        case Tag.countedImpressionItems.rawValue:
            try ImpressionItemsRecord.forEachView(&r, counted: true, body)
            return true
        default:
            return false
        }
    }

    /// Decodes a record and calls `body` with each record it stands for: the
    /// record itself, or the item events of an `ImpressionItemsRecord` (all
    /// read before the first call, so a malformed record applies nothing).
    package static func decodeEach(_ bytes: UnsafeRawBufferPointer, _ body: (RepartitionRecord) -> Void) throws(CodecError) {
        let grouped = try ImpressionItemsRecord.withItems(of: bytes) { header, items in
            ImpressionItemsRecord.forEachItemEvent(header, items, body)
        }
        if !grouped { body(try decode(bytes)) }
    }

    static func readFormatVersion(_ r: inout BorrowedByteReader) throws(CodecError) {
        let version = try r.readByte("repartition record format byte")
        guard version == formatVersion else {
            throw CodecError(.unknownVersion,
                             "repartition record format \(version); this build reads format \(formatVersion)")
        }
    }
}
