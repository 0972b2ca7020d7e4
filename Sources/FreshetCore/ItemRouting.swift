/// Turns source events into the item events sent to the item-keyed stage.
package enum ItemRouting {
    /// One event per interaction; skips included (item features ignore them,
    /// the embeddings joiner uses them as negatives).
    package static func itemEvents(for interaction: Interaction) -> [ItemEvent] {
        [itemEvent(for: interaction)]
    }

    /// The single item event of an interaction, without the array allocation.
    @inline(__always)
    package static func itemEvent(for i: Interaction) -> ItemEvent {
        ItemEvent(itemId: i.itemId, userId: i.userId, ts: i.ts,
                  kind: .interaction(i.action, dwellMs: i.dwellMs), requestId: i.requestId)
    }

    /// One event per shown item, with its position when the impression has positions.
    /// The event's index in the result is the `RecordOrigin.subIndex` to use.
    package static func itemEvents(for impression: Impression) -> [ItemEvent] {
        var out: [ItemEvent] = []
        out.reserveCapacity(impression.itemsShown.count)
        for (k, item) in impression.itemsShown.enumerated() {
            let position = impression.positions.flatMap { k < $0.count ? $0[k] : nil }
            out.append(ItemEvent(itemId: item, userId: impression.userId, ts: impression.ts,
                                 kind: .impression(position: position), requestId: impression.requestId))
        }
        return out
    }

    /// Calls `body(subIndex, event)` for each shown item without building an array
    /// (the hot path of a source task).
    @inline(__always)
    package static func forEachItemEvent(for impression: Impression, _ body: (UInt32, ItemEvent) -> Void) {
        let positions = impression.positions
        for (k, item) in impression.itemsShown.enumerated() {
            let position = positions.flatMap { k < $0.count ? $0[k] : nil }
            body(UInt32(k),
                 ItemEvent(itemId: item, userId: impression.userId, ts: impression.ts,
                           kind: .impression(position: position), requestId: impression.requestId))
        }
    }
}
