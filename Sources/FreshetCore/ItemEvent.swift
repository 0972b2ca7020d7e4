/// An event routed to the item-keyed stage: one per interaction, one per shown
/// item of an impression.
package struct ItemEvent: Sendable, Equatable {
    package enum Kind: Sendable, Equatable {
        /// Skips are routed too (item features ignore them; the embeddings joiner needs them).
        case interaction(Action, dwellMs: Int64?)
        case impression(position: Int32?)
    }

    package var itemId: String
    package var userId: String
    package var ts: EventTimeMs
    package var kind: Kind
    package var requestId: String?
    /// The user-history extension as it travels (embeddings): count varint,
    /// then per item its UTF-8 length varint and bytes; empty when not attached.
    /// Kept encoded so the item stage reads ids as bytes, with no String per
    /// id (this rides on every routed positive).
    package var userHistoryEncoded: [UInt8]
    /// Impressions released by the counts stage: the user's
    /// `interaction_count` as of the impression's time (the examples' serving
    /// feature); nil otherwise.
    package var interactionCount: Int64?
    /// The counts stage's copies of a late event (one read at or behind its
    /// source partition's watermark): the event time it is known from, just
    /// past that watermark (`BoundedOutOfOrdernessWatermark.knownAt`); nil for an on-time event,
    /// known from its own `ts`. The joiner decides by it, so its examples do
    /// not depend on how partitions interleave (docs/EMBEDDINGS.md, "Late events").
    package var knownAtMs: EventTimeMs?

    package init(itemId: String, userId: String, ts: EventTimeMs, kind: Kind, requestId: String? = nil,
                userHistory: [String] = []) {
        self.itemId = itemId
        self.userId = userId
        self.ts = ts
        self.kind = kind
        self.requestId = requestId
        self.userHistoryEncoded = Self.encodeHistory(userHistory)
    }

    /// The user's most recent positive items before this one, newest first
    /// (attached by the user stage to positives when embeddings are on; the
    /// item's owner counts co-occurrences with them). Empty when not attached.
    package var userHistory: [String] {
        get {
            var out: [String] = []
            forEachUserHistoryItem { out.append(String(decoding: $0, as: UTF8.self)) }
            return out
        }
        set { userHistoryEncoded = Self.encodeHistory(newValue) }
    }

    /// Calls `body` with the bytes of each history item, newest first (valid during the call).
    package func forEachUserHistoryItem(_ body: (UnsafeRawBufferPointer) -> Void) {
        guard !userHistoryEncoded.isEmpty else { return }
        userHistoryEncoded.withUnsafeBytes { Self.forEachHistoryItem(inEncoded: $0, body) }
    }

    /// Calls `body` with the bytes of each item of an encoded history (count
    /// varint, then length-prefixed items), newest first. Stops at a malformed
    /// length (the decoder and `ItemEventView` reject those before).
    package static func forEachHistoryItem(inEncoded raw: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        guard raw.count > 0 else { return }
        var r = BorrowedByteReader(raw)
        guard let n = try? r.readVarint("item_event.user_history.count") else { return }
        for _ in 0..<n {
            guard let item = try? r.readBytes("item_event.user_history.item") else { return }
            body(item)
        }
    }

    package static func encodeHistory(_ items: [String]) -> [UInt8] {
        encodeHistory(bytes: items.map { Array($0.utf8) })
    }

    /// The encoded history of `items` (their UTF-8 bytes), as `encodeHistory` writes it.
    package static func encodeHistory(bytes items: [[UInt8]]) -> [UInt8] {
        guard !items.isEmpty else { return [] }
        var w = ByteWriter(capacity: 1 + items.reduce(0) { $0 + 1 + $1.count })
        w.write(varint: UInt64(items.count))
        for item in items { w.write(bytes: item) }
        return w.bytes
    }

    /// True for click/watch/like/share interactions.
    package var isPositiveInteraction: Bool {
        if case .interaction(let a, _) = kind { return a.isPositive }
        return false
    }
}
