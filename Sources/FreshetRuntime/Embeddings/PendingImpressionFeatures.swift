import FreshetCore
import FreshetEmbeddings
import FreshetFeatures
import HeapModule

/// The item features the examples carry with an impression, exact by event
/// time (docs/EMBEDDINGS.md, "Item features as of the impression").
///
/// Definition: an impression of item i at event time `ts`, known from `K`
/// (`ts` when on time; `BoundedOutOfOrdernessWatermark.knownAt` when read
/// late), carries i's positives (`popularity_7d`) and impressions
/// (`impressions_7d`) known by K, over the panes `pane(K) − windowPanes + 1
/// ... pane(ts)`: the impression itself and every event of i known by K
/// (each event is known from its time, or from just past its partition's
/// watermark when read late), nothing known after it. A function of each
/// source partition's log, as `interaction_count` is.
///
/// How: the item task applies events as they arrive, partitions read ahead
/// of others included. Once its watermark passes K every event known by K
/// has been applied (a source partition's records after a marker are known
/// after the marker's watermark), so the counts are the store's sums over
/// those panes less the applied events known after K. Those, the events
/// applied ahead of the watermark, are kept per item until the watermark
/// passes them; impressions wait here, in order of K, until it passes theirs
/// (`evaluate(through:store:_:)`, called before the store's panes move:
/// the lowest pane an evaluation reads, pane(K) − windowPanes + 1, is in the
/// window of every watermark before K, so it is never freed yet).
///
/// Why: the counts were read when the impression was applied, which made
/// them depend on how the partitions interleaved: a breaker measured
/// `impressions_7d` off by more than half in 37% of a replay's examples, and
/// two identical runs disagreeing in 82%.
///
/// The evaluated items go to the counts stage (`ImpressionFeaturesOutbox`),
/// which joins the impression. Checkpointed with the item task
/// (`encode`/`restore`, meta field `join_pending`). Owned by the item task's
/// processing thread.
final class PendingImpressionFeatures {
    /// An item's counts as of an impression.
    struct Counts: Equatable {
        var popularity7d: Int64
        var impressions7d: Int64
        static let none = Counts(popularity7d: 0, impressions7d: 0)
    }

    /// A shown item whose features wait: what its part for the counts stage carries.
    struct AwaitedItem: Equatable {
        var userId: String
        var requestId: String?
        var ts: EventTimeMs
        /// The impression's source record; `subIndex` is the item's index among its shown items.
        var source: RecordOrigin
        var itemId: String
        var position: Int32?

        /// A freed waiting slot's placeholder.
        static let vacant = AwaitedItem(userId: "", requestId: nil, ts: 0,
                                        source: RecordOrigin(sourceTopic: 0, partition: 0, offset: 0), itemId: "", position: nil)
    }

    /// An applied event still ahead of the watermark.
    struct AppliedEvent: Equatable {
        var knownFrom: EventTimeMs
        var ts: EventTimeMs
        var positive: Bool
    }

    /// One item's applied events known after `evaluatedThrough`. On-time
    /// events (known from their own time, nearly all of them) are kept as
    /// sorted times, so an evaluation counts those after K within the
    /// impression's pane with two binary searches; late ones, whose pane
    /// may be any, are scanned.
    private struct Ahead {
        var positives: [EventTimeMs] = []
        var impressions: [EventTimeMs] = []
        /// By known-from time.
        var late: [AppliedEvent] = []
        var isEmpty: Bool { positives.isEmpty && impressions.isEmpty && late.isEmpty }
        var count: Int { positives.count + impressions.count + late.count }
    }

    /// An impression whose features wait for the watermark to pass `knownFrom`
    /// (its key in `waitingKeys[slot]`: heap nodes stay small to move).
    private struct Waiting: Comparable {
        var knownFrom: EventTimeMs
        /// Arrival order among equal `knownFrom`s (evaluation order changes no value; it keeps `encode` stable).
        var seq: UInt64
        var slot: UInt32
        /// The item's slot in the item store.
        var item: UInt32

        static func < (a: Waiting, b: Waiting) -> Bool { (a.knownFrom, a.seq) < (b.knownFrom, b.seq) }
        static func == (a: Waiting, b: Waiting) -> Bool { a.knownFrom == b.knownFrom && a.seq == b.seq }
    }

    /// By the item's slot in the item store (`ItemFeatureStore+Slots`).
    @exclusivity(unchecked) private var ahead: [Ahead] = []
    /// Items whose `ahead` entry may be non-empty (the sweep's work list).
    @exclusivity(unchecked) private var live: [UInt32] = []
    @exclusivity(unchecked) private var isLive: [Bool] = []
    @exclusivity(unchecked) private var waiting = Heap<Waiting>()
    @exclusivity(unchecked) private var waitingKeys: [AwaitedItem] = []
    @exclusivity(unchecked) private var freeKeySlots: [UInt32] = []
    @exclusivity(unchecked) private var seq: UInt64 = 0
    /// The watermark impressions have been evaluated through: events known
    /// by it are no longer kept, impressions known by it are evaluated at once.
    @exclusivity(unchecked) private(set) var evaluatedThrough: EventTimeMs?
    @exclusivity(unchecked) private var sweptAt: EventTimeMs = .min
    /// Event time between sweeps of every live item (each item's own lists
    /// are also trimmed whenever it gets an event).
    private let sweepEveryMs: Int64 = 60_000

    init() {}

    /// Impressions waiting for the watermark.
    var waitingCount: Int { waiting.count }
    /// Applied events kept ahead of the watermark.
    var aheadCount: Int { ahead.reduce(0) { $0 + $1.count } }

    /// An event the item store applied (not dropped as late): a positive
    /// interaction (`positive`) or an impression's shown item. Kept while an
    /// impression known before it may still be evaluated.
    /// `item`: the item's slot in the task's item store.
    func noteApplied(item: UInt32, ts: EventTimeMs, knownFrom: EventTimeMs, positive: Bool) {
        if let through = evaluatedThrough, knownFrom <= through { return }
        let s = Int(item)
        if s >= ahead.count {
            ahead.append(contentsOf: repeatElement(Ahead(), count: s + 1 - ahead.count))
            isLive.append(contentsOf: repeatElement(false, count: s + 1 - isLive.count))
        }
        if !isLive[s] {
            isLive[s] = true
            live.append(UInt32(s))
        }
        if knownFrom <= ts {
            if positive { Self.insert(ts, into: &ahead[s].positives) } else { Self.insert(ts, into: &ahead[s].impressions) }
        } else {
            let event = AppliedEvent(knownFrom: knownFrom, ts: ts, positive: positive)
            if let last = ahead[s].late.last, last.knownFrom > knownFrom {
                ahead[s].late.insert(event, at: Self.firstIndex(ahead[s].late, knownAfter: knownFrom))
            } else {
                ahead[s].late.append(event)
            }
        }
        if let through = evaluatedThrough { Self.dropKnown(&ahead[s], through: through) }
    }

    /// A shown item of an impression the store just applied (after
    /// `noteApplied` for it), known from `knownFrom`, in the store's `item`
    /// slot: its features go to `evaluated` now when the watermark has passed
    /// that time already (an idle partition left out of it), else once it does.
    func await(_ shown: AwaitedItem, item: UInt32, knownFrom: EventTimeMs, store: ItemFeatureStore,
               evaluated: (AwaitedItem, EventTimeMs, Counts) -> Void) {
        let known = max(knownFrom, shown.ts)
        if let through = evaluatedThrough, known <= through {
            evaluated(shown, known, features(item, ts: shown.ts, knownFrom: known, store: store))
            return
        }
        let slot: UInt32
        if let free = freeKeySlots.popLast() {
            slot = free
            waitingKeys[Int(slot)] = shown
        } else {
            slot = UInt32(truncatingIfNeeded: waitingKeys.count)
            waitingKeys.append(shown)
        }
        waiting.insert(Waiting(knownFrom: known, seq: seq, slot: slot, item: item))
        seq &+= 1
    }

    /// Evaluates the impressions known by `watermark` (in order of their
    /// known-from time, then arrival) into `evaluated`, then forgets the
    /// events known by it. Call with each new watermark of the item task's
    /// features, before the store moves to it.
    func evaluate(through watermark: EventTimeMs, store: ItemFeatureStore,
                  _ evaluated: (AwaitedItem, EventTimeMs, Counts) -> Void) {
        if let through = evaluatedThrough, watermark <= through { return }
        while let next = waiting.min, next.knownFrom <= watermark {
            _ = waiting.popMin()
            evaluate(next, store: store, evaluated)
        }
        evaluatedThrough = watermark
        if watermark >= sweptAt &+ sweepEveryMs || sweptAt == .min {
            sweptAt = watermark
            sweep(through: watermark)
        }
    }

    /// Evaluates every waiting impression now: the item task's sources have
    /// all ended their bounded run, so every event known before any of them
    /// has been applied (later ones are subtracted as usual).
    func evaluateAll(store: ItemFeatureStore, _ evaluated: (AwaitedItem, EventTimeMs, Counts) -> Void) {
        while let next = waiting.popMin() { evaluate(next, store: store, evaluated) }
    }

    private func evaluate(_ w: Waiting, store: ItemFeatureStore, _ evaluated: (AwaitedItem, EventTimeMs, Counts) -> Void) {
        // Moved out of its slot (the slot is freed), not copied and then dropped.
        var shown = AwaitedItem.vacant
        swap(&shown, &waitingKeys[Int(w.slot)])
        freeKeySlots.append(w.slot)
        evaluated(shown, w.knownFrom, features(w.item, ts: shown.ts, knownFrom: w.knownFrom, store: store))
    }

    /// The item's counts as of an impression at `ts` known from `knownFrom`
    /// among the events applied so far: the store's sums over the
    /// definition's panes less the applied events known after it. Exact
    /// once the watermark has passed `knownFrom`; before, what is known so
    /// far (the examples without the counts stage, which join by arrival).
    func asOf(itemId: String, ts: EventTimeMs, knownFrom: EventTimeMs, store: ItemFeatureStore) -> Counts {
        guard let item = store.existingSlot(of: itemId) else { return .none }
        return features(item, ts: ts, knownFrom: max(knownFrom, ts), store: store)
    }

    private func features(_ item: UInt32, ts: EventTimeMs, knownFrom: EventTimeMs,
                          store: ItemFeatureStore) -> Counts {
        let panes = store.panes
        let hi = panes.pane(of: ts)
        let lo = panes.pane(of: knownFrom) &- Int64(panes.windowPanes) &+ 1
        guard lo <= hi else { return .none }
        let totals = store.windowTotals(ofSlot: item, panes: lo...hi)
        var popularity = totals.popularity, impressions = totals.impressions
        if Int(item) < ahead.count {
            let s = item
            // On time: known at their time t > K ≥ the impression's pane
            // start, so in the range exactly when t is before the pane's end.
            let end = panes.start(ofPane: hi &+ 1)
            popularity -= Self.count(ahead[Int(s)].positives, after: knownFrom, before: end)
            impressions -= Self.count(ahead[Int(s)].impressions, after: knownFrom, before: end)
            let late = ahead[Int(s)].late
            for k in Self.firstIndex(late, knownAfter: knownFrom)..<late.count {
                let pane = panes.pane(of: late[k].ts)
                guard pane >= lo && pane <= hi else { continue }
                if late[k].positive { popularity -= 1 } else { impressions -= 1 }
            }
        }
        return Counts(popularity7d: popularity, impressions7d: impressions)
    }

    /// Trims every live item's lists to the events known after `watermark`.
    private func sweep(through watermark: EventTimeMs) {
        var stillLive: [UInt32] = []
        for s in live {
            Self.dropKnown(&ahead[Int(s)], through: watermark)
            if ahead[Int(s)].isEmpty { isLive[Int(s)] = false } else { stillLive.append(s) }
        }
        live = stillLive
    }

    private static func dropKnown(_ item: inout Ahead, through watermark: EventTimeMs) {
        if let first = item.positives.first, first <= watermark {
            item.positives.removeFirst(firstIndex(item.positives, after: watermark))
        }
        if let first = item.impressions.first, first <= watermark {
            item.impressions.removeFirst(firstIndex(item.impressions, after: watermark))
        }
        if let first = item.late.first, first.knownFrom <= watermark {
            item.late.removeFirst(firstIndex(item.late, knownAfter: watermark))
        }
    }

    /// Mostly in order: append; else insert at its place.
    private static func insert(_ time: EventTimeMs, into times: inout [EventTimeMs]) {
        if let last = times.last, last > time {
            times.insert(time, at: firstIndex(times, after: time))
        } else {
            times.append(time)
        }
    }

    /// The number of `times` with `after < time < before`.
    private static func count(_ times: [EventTimeMs], after: EventTimeMs, before: EventTimeMs) -> Int64 {
        guard let last = times.last, last > after, before > after &+ 1 else { return 0 }
        return Int64(max(0, firstIndex(times, after: before &- 1) - firstIndex(times, after: after)))
    }

    /// The first index whose time is after `time`.
    @inline(__always)
    private static func firstIndex(_ times: [EventTimeMs], after time: EventTimeMs) -> Int {
        times.partitioningIndex { $0 > time }
    }

    /// The first index whose event is known after `time`.
    @inline(__always)
    private static func firstIndex(_ events: [AppliedEvent], knownAfter time: EventTimeMs) -> Int {
        events.partitioningIndex { $0.knownFrom > time }
    }

    /// 2: a waiting item carries what its part for the counts stage needs;
    /// 1 (an earlier release's, whose item stage joined): the item and the
    /// user only, so it is read only when no item waits (`restore` refuses
    /// one that holds waiting items).
    private static let format: UInt8 = 2

    /// Checkpoint form: version; the evaluated-through watermark (flag,
    /// zigzag); the items with events ahead (count, then per item its id and
    /// events: known-from, known-from − ts, positive flag), in id order; the
    /// waiting items in evaluation order (user, item, ts, known-from − ts,
    /// optional request id, the impression's source topic byte, partition,
    /// offset, the item's index, optional position). Numbers are zigzag
    /// varints, ids length-prefixed.
    /// `store`: the task's item store (item ids by slot).
    func encode(store: ItemFeatureStore) -> [UInt8] {
        var w = ByteWriter(capacity: 16 + aheadCount * 8 + waiting.count * 32)
        w.write(byte: Self.format)
        if let evaluatedThrough {
            w.write(byte: 1)
            w.write(zigzag: evaluatedThrough)
        } else {
            w.write(byte: 0)
        }
        let items = live.filter { !ahead[Int($0)].isEmpty }.map { (store.itemId(ofSlot: $0), Self.events(of: ahead[Int($0)])) }
            .sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        w.write(varint: UInt64(items.count))
        for (id, events) in items {
            w.write(string: id)
            w.write(varint: UInt64(events.count))
            for e in events {
                w.write(zigzag: e.knownFrom)
                w.write(zigzag: e.knownFrom &- e.ts)
                w.write(byte: e.positive ? 1 : 0)
            }
        }
        let ordered = waiting.unordered.sorted()
        w.write(varint: UInt64(ordered.count))
        for waiter in ordered {
            let shown = waitingKeys[Int(waiter.slot)]
            // The item's id is the shown item's (the slot is this store's, remade at restore).
            w.write(string: shown.userId)
            w.write(string: shown.itemId)
            w.write(zigzag: shown.ts)
            w.write(zigzag: waiter.knownFrom &- shown.ts)
            w.write(optionalString: shown.requestId)
            w.write(byte: shown.source.sourceTopic)
            w.write(zigzag: Int64(shown.source.partition))
            w.write(zigzag: shown.source.offset)
            w.write(varint: UInt64(shown.source.subIndex))
            w.write(optionalZigzag: shown.position.map(Int64.init))
        }
        return w.bytes
    }

    /// An item's kept events in one list (by known-from time, then time; the checkpoint's order).
    private static func events(of item: Ahead) -> [AppliedEvent] {
        (item.positives.map { AppliedEvent(knownFrom: $0, ts: $0, positive: true) }
            + item.impressions.map { AppliedEvent(knownFrom: $0, ts: $0, positive: false) } + item.late)
            .sorted { ($0.knownFrom, $0.ts, $0.positive ? 1 : 0) < ($1.knownFrom, $1.ts, $1.positive ? 1 : 0) }
    }

    /// Replaces the state with a checkpoint's (`encode`'s form), after the
    /// task's item `store` was restored (its items get their slots there).
    /// - Throws: `CodecError` for truncated bytes or an unknown version.
    func restore(_ bytes: [UInt8], store: ItemFeatureStore) throws(CodecError) {
        ahead.removeAll()
        live.removeAll()
        isLive.removeAll()
        waiting = Heap()
        waitingKeys.removeAll()
        freeKeySlots.removeAll()
        seq = 0
        evaluatedThrough = nil
        sweptAt = .min
        var r = ByteReader(bytes)
        let version = try r.readByte("pending impression features version")
        guard version == 1 || version == Self.format else {
            throw CodecError(.unknownVersion, "pending impression features: format \(version)")
        }
        switch try r.readByte("evaluated-through flag") {
        case 0: break
        case 1: evaluatedThrough = try r.readZigzag("evaluated through")
        case let flag: throw CodecError(.invalidValue, "evaluated-through flag \(flag)")
        }
        let items = try r.readVarint("items ahead")
        for _ in 0..<items {
            let id = try r.readString("item")
            let n = try r.readVarint("events ahead")
            for _ in 0..<n {
                let knownFrom = try r.readZigzag("known from")
                let ts = knownFrom &- (try r.readZigzag("known after ts"))
                let positive = try r.readByte("positive") == 1
                // Written in order and after the evaluated-through time: `noteApplied` keeps them all.
                noteApplied(item: store.slot(ofItem: id), ts: ts, knownFrom: knownFrom, positive: positive)
            }
        }
        let n = try r.readVarint("waiting impressions")
        guard version == Self.format else {
            // Format 1 (an earlier release): its waiting items lack what a
            // part needs (request id, source position, position).
            guard n == 0 else {
                throw CodecError(.unknownVersion, TaskCheckpoint.retiredJoinStateMessage(
                    "join_pending of format 1 holds \(n) impressed items waiting for their features"))
            }
            return
        }
        guard n <= UInt64(bytes.count) else { throw CodecError(.invalidValue, "waiting impressions \(n)") }
        for _ in 0..<n {
            let userId = try r.readString("user")
            let itemId = try r.readString("item")
            let ts = try r.readZigzag("ts")
            let knownFrom = ts &+ (try r.readZigzag("known after ts"))
            let requestId = try r.readOptionalString("request id")
            let topic = try r.readByte("source topic")
            guard let partition = Int32(exactly: try r.readZigzag("source partition")) else {
                throw CodecError(.invalidValue, "waiting impression's source partition")
            }
            let offset = try r.readZigzag("source offset")
            guard let index = UInt32(exactly: try r.readVarint("item index")) else {
                throw CodecError(.invalidValue, "waiting impression's item index")
            }
            let position = try r.readOptionalZigzag("position").map { Int32(truncatingIfNeeded: $0) }
            waitingKeys.append(AwaitedItem(userId: userId, requestId: requestId, ts: ts,
                                           source: RecordOrigin(sourceTopic: topic, partition: partition, offset: offset,
                                                                subIndex: index),
                                           itemId: itemId, position: position))
            waiting.insert(Waiting(knownFrom: knownFrom, seq: seq, slot: UInt32(truncatingIfNeeded: waitingKeys.count - 1),
                                   item: store.slot(ofItem: itemId)))
            seq &+= 1
        }
    }
}
