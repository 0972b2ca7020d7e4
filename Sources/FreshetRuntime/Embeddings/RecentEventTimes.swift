import FreshetCore

/// The event times of each item's recently applied positive interactions,
/// so the `popularity_7d` recorded with an impression can leave out the
/// positives after it (docs/EMBEDDINGS.md, "Item features as of the
/// impression").
///
/// Why: the features as of an impression are the item's window counts up to
/// the impression's pane, of the events applied so far. Panes are an hour,
/// so those counts include every event of the impression's pane already
/// applied, also one with a later event time; in a replay, where a source
/// partition of interactions can be read ahead of the impressions' one, the
/// impressed user's own click is usually among them (a user's replay found
/// 83% of on-time positives carrying their own click in `popularity_7d`).
/// `later` counts those events, to be subtracted. Positives only: they are
/// the label's leak; later impressions in `impressions_7d` are arrival
/// noise, not the label, and tracking the impressions' times (two thirds of
/// the item events) cost the item stage 12-18% (`bench tasks --only 2`).
///
/// Kept per item: a sorted array of times, of
/// the events no older than `retentionMs` before the newest pruning bound
/// (`prune`); an impression further behind than that is not corrected.
/// Not checkpointed: after a restore the events applied before it are not
/// known, so impressions within an hour of it may still count a later event.
/// Processing thread only.
final class RecentEventTimes {
    let retentionMs: Int64
    /// Item ids → index into `positives` (grow-only, as the item store's slots).
    @exclusivity(unchecked) private var ids = StringInterner()
    @exclusivity(unchecked) private var positives: [[EventTimeMs]] = []
    /// Times at or before this are dropped (and no longer counted).
    @exclusivity(unchecked) private var bound = EventTimeMs.min

    init(retentionMs: Int64) {
        self.retentionMs = retentionMs
    }

    /// Events held, for tests and gauges.
    var count: Int { positives.reduce(0) { $0 + $1.count } }

    /// Records an applied positive interaction with the item.
    func recordPositive(itemId: String, ts: EventTimeMs) {
        guard ts > bound else { return }
        let s = Int(ids.intern(itemId))
        if s == positives.count { positives.append([]) }
        Self.insert(ts, into: &positives[s], bound: bound)
    }

    /// The item's recorded positives with `after < time < before`.
    func laterPositives(itemId: String, after: EventTimeMs, before: EventTimeMs) -> Int64 {
        guard before > after &+ 1, let s = ids.index(of: itemId) else { return 0 }
        return Self.count(positives[Int(s)], after: after, before: before)
    }

    /// Drops the times `retentionMs` or more behind `watermark` (called as
    /// the watermark moves; the sweep over every item runs once per `retentionMs / 4` of event time).
    func prune(watermark: EventTimeMs) {
        let newBound = watermark &- retentionMs
        guard newBound > bound &+ retentionMs / 4 else { return }
        bound = newBound
        for s in positives.indices { Self.dropPrefix(&positives[s], through: newBound) }
    }

    private static func insert(_ ts: EventTimeMs, into times: inout [EventTimeMs], bound: EventTimeMs) {
        // Mostly in order: append; else insert at its place.
        if let last = times.last, last > ts {
            times.insert(ts, at: firstIndex(times, greaterThan: ts))
        } else {
            times.append(ts)
        }
        // An item's own events keep its array short (pruned here, not only in sweeps).
        if let first = times.first, first <= bound { dropPrefix(&times, through: bound) }
    }

    private static func dropPrefix(_ times: inout [EventTimeMs], through bound: EventTimeMs) {
        guard let first = times.first, first <= bound else { return }
        times.removeFirst(firstIndex(times, greaterThan: bound))
    }

    /// The first index whose time is greater than `ts` (binary search).
    private static func firstIndex(_ times: [EventTimeMs], greaterThan ts: EventTimeMs) -> Int {
        var low = 0, high = times.count
        while low < high {
            let mid = (low + high) / 2
            if times[mid] > ts { high = mid } else { low = mid + 1 }
        }
        return low
    }

    private static func count(_ times: [EventTimeMs], after: EventTimeMs, before: EventTimeMs) -> Int64 {
        let lo = firstIndex(times, greaterThan: after)
        let hi = firstIndex(times, greaterThan: before &- 1)
        return Int64(max(0, hi - lo))
    }
}
