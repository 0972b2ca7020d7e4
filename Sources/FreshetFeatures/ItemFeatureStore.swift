import FreshetCore

/// Keyed state for the item features of one item task: pane-based sliding window
/// counts (`popularity_7d`, `impressions_7d`), `updated_ms`, and the trending score.
///
/// Semantics (DESIGN.md "Feature semantics"):
/// - a positive interaction adds 1 to popularity in pane(ts), an impression adds 1
///   to impressions in pane(ts); skips are ignored entirely;
/// - visible totals at watermark W sum the panes in `panes.windowPanes(at: W)`;
///   panes ahead of pane(W) are stored but invisible; with no watermark nothing is visible;
/// - an event is dropped (counted in `droppedLateCount`) only when its pane is below
///   the window's lower bound at the current watermark, never for being ahead;
/// - `updatedMs` and trending take every routed event, dropped-late ones included,
///   so their final values do not depend on arrival order.
/// When the watermark moves, items whose visible totals change (panes entering at the
/// top or leaving at the bottom) are marked dirty via a timer index keyed by pane,
/// without scanning all items; expired panes are freed.
/// Single-threaded: owned by the task that runs it.
package final class ItemFeatureStore {
    package let panes: PaneSpec
    package let trending: TrendingDecay

    struct ItemState {
        /// The key, kept with the state: the index compares keys here, next to the data.
        let id: String
        /// `id`'s bytes packed for the comparison of a key given as bytes
        /// (every decoded event's items) without reading the `String`.
        let key: PackedIdKey
        var panes = PaneCounts()
        var updatedMs: EventTimeMs = .min
        /// Start of the pane whose arrival pushed the item's newest expired pane
        /// out of the window: the event time at which its counts last fell
        /// without a new event (`ItemFeatures.asOfMs`). Data-determined, so a
        /// replay computes the same value.
        var expiredAtMs: EventTimeMs = .min
        /// log2 forward-decay score; −∞ is the empty sum (no positive yet).
        var trending: Double = -.infinity
        /// `DirtyTracker` bits; fits in the struct's padding.
        var dirtyFlags: UInt8 = 0

        init(id: String) {
            self.id = id
            var bytes = id
            key = bytes.withUTF8 { PackedIdKey(UnsafeRawBufferPointer($0)) }
        }
    }

    @exclusivity(unchecked) var slotOf = KeyIndex()
    @exclusivity(unchecked) var states: [ItemState] = []
    @exclusivity(unchecked) var dirty = DirtyTracker()
    @exclusivity(unchecked) var timers = PaneTimerIndex()
    /// The last pane `pane(of:)` computed and its time range (empty at first).
    @exclusivity(unchecked) private var memoPane: Int64 = 0
    @exclusivity(unchecked) private var memoPaneStart: EventTimeMs = .max
    @exclusivity(unchecked) private var memoPaneEnd: EventTimeMs = .min
    /// Pane numbers are stored relative to this (the first pane seen) as Int32.
    @exclusivity(unchecked) var basePane: Int64?

    /// The store's current watermark (monotone); nil before the first one.
    /// (Read per event, by the owning task only: no dynamic exclusivity checks.)
    @exclusivity(unchecked) package private(set) var watermark: EventTimeMs?
    /// pane(watermark), cached.
    @exclusivity(unchecked) var topPane: Int64?
    /// Events whose pane had left the window on arrival.
    @exclusivity(unchecked) package internal(set) var droppedLateCount: Int64 = 0
    /// Events whose pane is more than 2^31 panes from the first pane seen (not
    /// representable); they count as dropped too. Only reachable with tiny panes.
    @exclusivity(unchecked) package internal(set) var droppedOutOfRangeCount: Int64 = 0

    package init(panes: PaneSpec = PaneSpec(), trending: TrendingDecay = TrendingDecay()) {
        self.panes = panes
        self.trending = trending
    }

    /// Number of items with state.
    package var count: Int { states.count }

    /// All item ids with state (for full snapshots).
    package var allItemIds: [String] { states.map(\.id) }

    /// Folds one routed event in. `watermark` is the task's current watermark; when it
    /// is ahead of the store's, the store advances first (firing due timers). A lower
    /// value than the store's is ignored (watermarks never regress).
    @discardableResult
    package func apply(_ event: ItemEvent, watermark w: EventTimeMs?) -> ItemApplyOutcome {
        if let w { advanceWatermark(to: w) }
        guard let positive = Self.isCounted(event.kind) else { return .ignored }
        return count(slot: slot(for: event.itemId), ts: event.ts, positive: positive)
    }

    /// `apply` without an `ItemEvent`: the fields the item features read. A
    /// single-process pipeline (the core benchmark, tools) folds an impression's
    /// items in this way without building one `ItemEvent` (four references to
    /// retain and release) per shown item.
    @discardableResult @inline(__always)
    package func apply(itemId: String, ts: EventTimeMs, kind: ItemEvent.Kind,
                      watermark w: EventTimeMs?) -> ItemApplyOutcome {
        if let w { advanceWatermark(to: w) }
        guard let positive = Self.isCounted(kind) else { return .ignored }
        return count(slot: slot(for: itemId), ts: ts, positive: positive)
    }

    /// `apply` for an event read in place from a repartition record: the item
    /// id as UTF-8 bytes (already validated), so a known item costs no `String`.
    @discardableResult
    package func apply(_ event: ItemEventView, watermark w: EventTimeMs?) -> ItemApplyOutcome {
        if let w { advanceWatermark(to: w) }
        guard let positive = Self.isCounted(event.kind) else { return .ignored }
        return count(slot: slot(forValidUTF8: event.itemId), ts: event.ts, positive: positive)
    }

    /// `apply` for an item id given as valid UTF-8 bytes (a decoded event's
    /// ids, `DecodedEvent`): a known item costs no `String`. `positive` is
    /// true for a positive interaction, false for an impression; skips are
    /// not passed in (item features ignore them).
    @discardableResult @inline(__always)
    package func apply(itemId: UnsafeRawBufferPointer, ts: EventTimeMs, positive: Bool,
                      watermark w: EventTimeMs?) -> ItemApplyOutcome {
        if let w { advanceWatermark(to: w) }
        return count(slot: slot(forValidUTF8: itemId), ts: ts, positive: positive)
    }

    /// true for a positive interaction, false for an impression, nil for what
    /// item features ignore (skips).
    @inline(__always)
    static func isCounted(_ kind: ItemEvent.Kind) -> Bool? {
        switch kind {
        case .interaction(let action, _): return action.isPositive ? true : nil
        case .impression: return false
        }
    }

    @inline(__always)
    func count(slot: UInt32, ts: EventTimeMs, positive: Bool) -> ItemApplyOutcome {
        let p = pane(of: ts)
        let window = Int64(panes.windowPanes)
        let top = topPane
        let late = top.map { p < $0 &- window &+ 1 } ?? false
        let rel = late ? nil : relative(p)
        let olderLimit = panes.windowPanes - 1
        // Every change to the item's state through one view of `states`: each
        // `states[i]` mutation checked the array's uniqueness (a runtime call,
        // five a event), ~3% of the processing thread.
        return states.withUnsafeMutableBufferPointer { states in
            let i = Int(slot)
            var changed = false
            if ts > states[i].updatedMs {
                states[i].updatedMs = ts
                changed = true
            }
            if positive {
                states[i].trending = trending.combine(states[i].trending, trending.log2Contribution(ts: ts))
                changed = true
            }
            if late {
                droppedLateCount &+= 1
                if changed { dirty.mark(slot, flags: &states[i].dirtyFlags) }
                return .droppedLate
            }
            guard let rel else {
                droppedOutOfRangeCount &+= 1
                if changed { dirty.mark(slot, flags: &states[i].dirtyFlags) }
                return .droppedLate
            }
            let isNewPane = states[i].panes.add(pane: rel, popularity: positive ? 1 : 0, impressions: positive ? 0 : 1,
                                                olderLimit: olderLimit)
            if isNewPane {
                // Invariant: the item's oldest pane always has a pending expiry timer.
                if states[i].panes.first == rel { timers.schedule(slot, at: p &+ window) }
                if top.map({ p > $0 }) ?? true { timers.schedule(slot, at: p) }
            }
            if let top, p <= top { changed = true }
            if changed {
                dirty.mark(slot, flags: &states[i].dirtyFlags)
            } else {
                // A count in a pane above the watermark's (and no newer updated_ms):
                // Redis need not change until the watermark reaches the pane (its
                // timer marks it then), but the checkpoint must carry the count now.
                // Without this, a checkpoint taken in between records the input as
                // consumed without the count, and a restore from it loses the event
                // for good (seen as impressions_7d one short after a crash).
                dirty.markForCheckpoint(slot, flags: &states[i].dirtyFlags)
            }
            return .counted
        }
    }

    /// `panes.pane(of:)` through a one-pane memo: nearly every event falls
    /// in the pane of the one before (an impression's items share one time),
    /// and the memo's range check replaces a 64-bit division per item event.
    @inline(__always)
    private func pane(of ts: EventTimeMs) -> Int64 {
        if ts >= memoPaneStart && ts < memoPaneEnd { return memoPane }
        let p = panes.pane(of: ts)
        memoPane = p
        memoPaneStart = panes.start(ofPane: p)
        memoPaneEnd = memoPaneStart &+ panes.paneMs
        return p
    }

    /// Moves the watermark forward (lower values are ignored). Items whose visible
    /// totals change are marked dirty; panes that left the window are freed.
    package func advanceWatermark(to w: EventTimeMs) {
        if let current = watermark, w <= current { return }
        watermark = w
        let newTop = panes.pane(of: w)
        let oldTop = topPane
        topPane = newTop
        if let oldTop, oldTop == newTop { return }
        let due = timers.popDue(upTo: newTop)
        for slot in due { wake(slot, oldTop: oldTop, newTop: newTop) }
    }

    /// A timer fired for `slot`: free expired panes, detect visibility changes.
    /// Every change to the item's state through one view of `states`, as in
    /// `count`: each `states[i]` mutation checked the array's uniqueness
    /// (a runtime call, three a wake).
    private func wake(_ slot: UInt32, oldTop: Int64?, newTop: Int64) {
        let window = Int64(panes.windowPanes)
        let lowest = clampedRelative(newTop &- window &+ 1)
        let enterLo = oldTop.map { clampedRelative($0 &+ 1) } ?? Int32.min
        let enterHi = clampedRelative(newTop)
        let base = basePane
        states.withUnsafeMutableBufferPointer { states in
            let i = Int(slot)
            var changed = false
            if let expired = states[i].panes.newestPane(below: lowest), let base {
                let at = expiryTime(ofPane: base &+ Int64(expired))
                if at > states[i].expiredAtMs { states[i].expiredAtMs = at }
            }
            if states[i].panes.removePanes(below: lowest) {
                changed = true
                if let first = states[i].panes.first, let base {
                    timers.schedule(slot, at: base &+ Int64(first) &+ window)
                }
            }
            if !changed && states[i].panes.hasPane(in: enterLo, enterHi) { changed = true }
            if changed { dirty.mark(slot, flags: &states[i].dirtyFlags) }
        }
    }

    /// When pane `pane` (absolute) leaves the window, its counts fall: the
    /// start of pane `pane + windowPanes` (an item's `expiredAtMs`).
    @inline(__always)
    func expiryTime(ofPane pane: Int64) -> EventTimeMs {
        panes.start(ofPane: pane &+ Int64(panes.windowPanes))
    }

    /// Features at the current watermark, or nil for an unknown item.
    package func features(of itemId: String) -> ItemFeatures? {
        guard let slot = lookup(itemId) else { return nil }
        return features(slot: Int(slot))
    }

    /// The window counts as of event time `ts`: the sums over the window's
    /// panes ending at pane(ts), `(pane(ts) − windowPanes + 1)...pane(ts)`, of
    /// every event applied so far, whatever the watermark (panes above it
    /// included). Nil for an unknown item. Exact unless the watermark is
    /// already more than a window past `ts` (panes below its window are freed).
    package func windowTotals(of itemId: String, asOf ts: EventTimeMs) -> (popularity: Int64, impressions: Int64)? {
        guard let slot = lookup(itemId) else { return nil }
        let top = panes.pane(of: ts)
        return windowTotals(ofSlot: slot, panes: (top &- Int64(panes.windowPanes) &+ 1)...top)
    }

    /// Each item changed since the previous `takeDirty`, with its features:
    /// the same items `takeDirty` returns, without looking each id up again.
    package func takeDirtyFeatures(_ body: (_ itemId: String, _ features: ItemFeatures) -> Void) {
        let slots = dirty.takeFlush()
        for s in slots {
            let i = Int(s)
            states[i].dirtyFlags &= ~DirtyTracker.flushBit
            body(states[i].id, features(slot: i))
        }
    }

    private func features(slot: Int) -> ItemFeatures {
        let s = states[slot]
        var totals: (popularity: Int64, impressions: Int64) = (0, 0)
        if let top = topPane {
            totals = s.panes.totals(lo: clampedRelative(top &- Int64(panes.windowPanes) &+ 1),
                                    hi: clampedRelative(top))
        }
        return ItemFeatures(popularity7d: totals.popularity, impressions7d: totals.impressions,
                            updatedMs: s.updatedMs, asOfMs: max(s.updatedMs, s.expiredAtMs),
                            trendingLog2Score: s.trending > -.infinity ? s.trending : nil)
    }

    /// Item ids changed since the previous call (for the Redis flush and trending).
    package func takeDirty() -> [String] {
        let slots = dirty.takeFlush()
        for s in slots { states[Int(s)].dirtyFlags &= ~DirtyTracker.flushBit }
        return slots.map { states[Int($0)].id }
    }

    /// Item ids changed since the previous call (for incremental checkpoints).
    package func takeChangedForCheckpoint() -> [String] {
        let slots = dirty.takeCheckpoint()
        for s in slots { states[Int(s)].dirtyFlags &= ~DirtyTracker.checkpointBit }
        return slots.map { states[Int($0)].id }
    }

    package func removeAll() {
        slotOf.removeAll()
        states.removeAll()
        dirty.removeAll()
        timers.removeAll()
        basePane = nil
        watermark = nil
        topPane = nil
        droppedLateCount = 0
        droppedOutOfRangeCount = 0
    }

    @inline(__always)
    func lookup(_ itemId: String) -> UInt32? {
        slotOf.slot(tag: KeyIndex.tag(itemId)) { IdBytes.equal(states[Int($0)].id, itemId) }
    }

    @inline(__always)
    func slot(for itemId: String) -> UInt32 {
        let next = UInt32(truncatingIfNeeded: states.count)
        let s = slotOf.slot(tag: KeyIndex.tag(itemId), isKey: { IdBytes.equal(states[Int($0)].id, itemId) }, orInsert: { next })
        if s != next { return s }
        states.append(ItemState(id: itemId))
        return s
    }

    /// The slot of an item id given as valid UTF-8 bytes; a `String` is made
    /// only for a new item. Keys compare packed (`PackedIdKey`), the stored
    /// `String` read only for an id longer than 16 bytes: reading it for
    /// `IdBytes.equal` retained and released it (two runtime calls per
    /// item event, ~30 instructions, callgrind).
    @inline(__always)
    func slot(forValidUTF8 itemId: UnsafeRawBufferPointer) -> UInt32 {
        let next = UInt32(truncatingIfNeeded: states.count)
        let key = PackedIdKey(itemId)
        let s = slotOf.slot(tag: slotOf.tag(bytes: itemId),
                            isKey: { states[Int($0)].key == key && (key.isWhole || IdBytes.equal(states[Int($0)].id, bytes: itemId)) },
                            orInsert: { next })
        if s != next { return s }
        states.append(ItemState(id: BorrowedByteReader.string(validUTF8: itemId)))
        return s
    }

    /// `pane` relative to the base pane, fixing the base on first use; nil when it
    /// does not fit in Int32.
    @inline(__always)
    func relative(_ pane: Int64) -> Int32? {
        guard let base = basePane else {
            basePane = pane
            return 0
        }
        // Int32.min is PaneCounts' "no pane" marker.
        guard let r = Int32(exactly: pane &- base), r != PaneCounts.none else { return nil }
        return r
    }

    /// Relative pane clamped into Int32 (for range bounds, not for storage).
    func clampedRelative(_ pane: Int64) -> Int32 {
        guard let base = basePane else { return 0 }
        let (d, overflow) = pane.subtractingReportingOverflow(base)
        if overflow { return pane < 0 ? .min : .max }
        return Int32(clamping: d)
    }
}

/// An id's length and up to 16 of its bytes in two words, read as
/// `IdBytes.equal(bytes:_:)` reads them (overlapping loads: the first and
/// last eight bytes, or four, or the first, middle and last byte), so two
/// ids of at most 16 bytes have equal keys exactly when their bytes are
/// equal. A longer id's key holds its length only: equal keys then say
/// nothing, and the bytes must be compared.
struct PackedIdKey: Equatable {
    let length: Int
    let first: UInt64
    let last: UInt64

    @inline(__always)
    init(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        length = n
        guard n > 0, n <= 16, let p = bytes.baseAddress else {
            (first, last) = (0, 0)
            return
        }
        if n >= 8 {
            first = p.loadUnaligned(as: UInt64.self)
            last = p.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
        } else if n >= 4 {
            first = UInt64(p.loadUnaligned(as: UInt32.self))
            last = UInt64(p.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self))
        } else {
            first = UInt64(p.load(as: UInt8.self)) | UInt64(p.load(fromByteOffset: n >> 1, as: UInt8.self)) << 8
            last = UInt64(p.load(fromByteOffset: n &- 1, as: UInt8.self))
        }
    }

    /// True when the key holds every byte of its id (at most 16 bytes).
    var isWhole: Bool { length <= 16 }
}
