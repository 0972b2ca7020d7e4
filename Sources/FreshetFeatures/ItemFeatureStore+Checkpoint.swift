import FreshetCore

/// Snapshot encoding of item state (entry format 2; format 1 is still read).
///
/// Entry: `[2] updated_ms:zigzag expired_at_ms:zigzag has_trending:u8 [trending:f64] n:varint
/// (pane:zigzag popularity:varint impressions:varint)*n` with absolute pane numbers.
/// Format 1 lacks `expired_at_ms` (restored as "never"; panes that expire
/// after the restore set it again).
/// Metadata: `[1] watermark:optional zigzag dropped_late:zigzag dropped_out_of_range:zigzag`.
/// Restore order: metadata first, then entries (so expired panes are skipped and
/// timers are registered against the restored watermark).
extension ItemFeatureStore {
    static let entryFormat: UInt8 = 2
    static let entryFormatWithoutExpiry: UInt8 = 1
    static let metadataFormat: UInt8 = 1

    /// The item's state as bytes, or nil when the item has none.
    package func encodeEntry(_ itemId: String) -> [UInt8]? {
        guard let slot = lookup(itemId) else { return nil }
        var w = ByteWriter(capacity: 24 + 8 * states[Int(slot)].panes.count)
        _ = appendCheckpointEntry(slot: slot, to: &w)
        return w.bytes
    }

    /// The slots of the items changed since the last checkpoint, in first-change
    /// order (handles for `appendCheckpointEntry`); independent of the flush's list.
    package func takeChangedSlotsForCheckpoint() -> [UInt32] {
        let slots = dirty.takeCheckpoint()
        for s in slots { states[Int(s)].dirtyFlags &= ~DirtyTracker.checkpointBit }
        return slots
    }

    /// Appends the entry of the item in `slot` (from `takeChangedSlotsForCheckpoint`)
    /// to `w`, the same bytes `encodeEntry` returns, and returns the item's id.
    /// A checkpoint encodes thousands of entries into one reused writer this way
    /// (no array and no id lookup per entry).
    package func appendCheckpointEntry(slot: UInt32, to w: inout ByteWriter) -> String {
        let i = Int(slot)
        let base = basePane ?? 0
        w.write(byte: Self.entryFormat)
        w.write(zigzag: states[i].updatedMs)
        w.write(zigzag: states[i].expiredAtMs)
        let trending = states[i].trending
        if trending > -.infinity {
            w.write(byte: 1)
            w.write(double: trending)
        } else {
            w.write(byte: 0)
        }
        w.write(varint: UInt64(states[i].panes.count))
        states[i].panes.forEach { e in
            w.write(zigzag: base &+ Int64(e.pane))
            w.write(varint: UInt64(e.popularity))
            w.write(varint: UInt64(e.impressions))
        }
        return states[i].id
    }

    /// Replaces the item's state with a snapshot entry and re-registers its timers.
    /// Panes already outside the window at the store's watermark are skipped.
    /// The item is not marked dirty (it was flushed before the snapshot).
    package func restoreEntry(itemId: String, bytes: some Collection<UInt8>) throws(CodecError) {
        var r = ByteReader(bytes)
        let format = try r.readByte("item entry format")
        guard format == Self.entryFormat || format == Self.entryFormatWithoutExpiry else {
            throw CodecError(.unknownVersion, "item entry format \(format) for '\(itemId)'; expected \(Self.entryFormat)")
        }
        var state = ItemState(id: itemId)
        state.updatedMs = try r.readZigzag("item entry updated_ms")
        if format == Self.entryFormat { state.expiredAtMs = try r.readZigzag("item entry expired_at_ms") }
        switch try r.readByte("item entry trending flag") {
        case 0: break
        case 1: state.trending = try r.readDouble("item entry trending score")
        case let f: throw CodecError(.invalidValue, "item entry trending flag \(f) for '\(itemId)'")
        }
        let n = try r.readVarint("item entry pane count")
        guard n <= UInt64(r.remaining) else { throw CodecError(.truncated, "item entry panes for '\(itemId)'") }
        let window = Int64(panes.windowPanes)
        var absolute: [Int64] = []
        var previous: Int64?
        for _ in 0..<n {
            let pane = try r.readZigzag("item entry pane")
            let pop = try r.readVarint("item entry pane popularity")
            let imp = try r.readVarint("item entry pane impressions")
            guard previous.map({ pane > $0 }) ?? true else {
                throw CodecError(.invalidValue, "item entry panes not increasing for '\(itemId)'")
            }
            previous = pane
            guard let pop32 = UInt32(exactly: pop), let imp32 = UInt32(exactly: imp) else {
                throw CodecError(.invalidValue, "item entry pane count above UInt32 for '\(itemId)'")
            }
            if let top = topPane, pane < top &- window &+ 1 {
                // Expired meanwhile: the counts fell when the window passed it.
                let at = panes.start(ofPane: pane &+ window)
                if at > state.expiredAtMs { state.expiredAtMs = at }
                continue
            }
            guard let rel = relative(pane) else {
                throw CodecError(.invalidValue, "item entry pane \(pane) too far from base pane for '\(itemId)'")
            }
            state.panes.appendRestored(PaneCount(pane: rel, popularity: pop32, impressions: imp32),
                                       olderLimit: panes.windowPanes - 1)
            absolute.append(pane)
        }
        try r.expectEnd("item entry '\(itemId)'")
        let slot = self.slot(for: itemId)
        state.dirtyFlags = states[Int(slot)].dirtyFlags // the slot may already be listed as dirty
        states[Int(slot)] = state
        if let oldest = absolute.first { timers.schedule(slot, at: oldest &+ window) }
        for p in absolute where topPane.map({ p > $0 }) ?? true { timers.schedule(slot, at: p) }
    }

    /// Store-wide state that is not per item: the watermark and drop counters.
    package func encodeMetadata() -> [UInt8] {
        var w = ByteWriter(capacity: 24)
        w.write(byte: Self.metadataFormat)
        w.write(optionalZigzag: watermark)
        w.write(zigzag: droppedLateCount)
        w.write(zigzag: droppedOutOfRangeCount)
        return w.bytes
    }

    /// Restores `encodeMetadata()` output; call before restoring entries.
    package func restoreMetadata(_ bytes: some Collection<UInt8>) throws(CodecError) {
        var r = ByteReader(bytes)
        let format = try r.readByte("item store metadata format")
        guard format == Self.metadataFormat else {
            throw CodecError(.unknownVersion, "item store metadata format \(format); expected \(Self.metadataFormat)")
        }
        let w = try r.readOptionalZigzag("item store watermark")
        let dropped = try r.readZigzag("item store dropped_late")
        let outOfRange = try r.readZigzag("item store dropped_out_of_range")
        try r.expectEnd("item store metadata")
        if let w { advanceWatermark(to: w) }
        droppedLateCount = dropped
        droppedOutOfRangeCount = outOfRange
    }
}
