import FreshetCore

/// Items by slot: the handle the store gives each item it holds, its for the
/// store's life (slots are never reused). State kept beside the store per
/// item (the examples' `PendingImpressionFeatures`) indexes by it, so an
/// event's item is looked up once, by the store, not again by each keeper.
extension ItemFeatureStore {
    /// `apply(_:watermark:)`, and the item's slot (nil for an event item
    /// features ignore: a skip makes no state).
    package func applyReturningSlot(_ event: ItemEvent, watermark w: EventTimeMs?) -> (ItemApplyOutcome, UInt32?) {
        if let w { advanceWatermark(to: w) }
        guard let positive = Self.isCounted(event.kind) else { return (.ignored, nil) }
        let s = slot(for: event.itemId)
        return (count(slot: s, ts: event.ts, positive: positive), s)
    }

    /// `apply(itemId:ts:positive:watermark:)` (the id as valid UTF-8 bytes), and the item's slot.
    package func applyReturningSlot(itemId: UnsafeRawBufferPointer, ts: EventTimeMs, positive: Bool,
                                    watermark w: EventTimeMs?) -> (ItemApplyOutcome, UInt32) {
        if let w { advanceWatermark(to: w) }
        let s = slot(forValidUTF8: itemId)
        return (count(slot: s, ts: ts, positive: positive), s)
    }

    /// Marks the item for the next flush, which writes its whole hash again
    /// (a key Redis refused); no checkpoint entry, its state did not change.
    /// False for an item the store does not hold.
    @discardableResult
    package func markForRewrite(itemId: String) -> Bool {
        guard let slot = lookup(itemId) else { return false }
        dirty.markForFlush(slot, flags: &states[Int(slot)].dirtyFlags)
        return true
    }

    /// The item's slot, nil for an item the store does not hold.
    package func existingSlot(of itemId: String) -> UInt32? { lookup(itemId) }

    /// The item's slot, made (with empty state) when new.
    package func slot(ofItem itemId: String) -> UInt32 { slot(for: itemId) }

    /// The id of the item in `slot`.
    package func itemId(ofSlot slot: UInt32) -> String { states[Int(slot)].id }

    /// The sums over the absolute panes `range` of the item in `slot` (panes
    /// below the watermark's window are freed, so a range reaching below it
    /// counts less): what the examples' item features as of an impression
    /// start from (`PendingImpressionFeatures`).
    package func windowTotals(ofSlot slot: UInt32, panes range: ClosedRange<Int64>) -> (popularity: Int64, impressions: Int64) {
        states[Int(slot)].panes.totals(lo: clampedRelative(range.lowerBound), hi: clampedRelative(range.upperBound))
    }
}
