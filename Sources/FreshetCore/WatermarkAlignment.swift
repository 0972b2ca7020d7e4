/// Event-time alignment of a group's source partitions, as Flink's watermark
/// alignment does for splits: a partition whose watermark runs more than
/// `maxDriftMs` ahead of the group's slowest partition is paused, and resumed
/// once the slowest is within `resumeDriftMs` of it again (hysteresis: each
/// pause throws away the partition's prefetched records, which are fetched
/// again at resume).
///
/// Why: a downstream task's watermark is the minimum over every source
/// partition, so whatever a fast partition delivers ahead of the slowest is
/// held in state (the examples' join) until the slowest catches up. Reading a
/// backlog, the consumer delivers a few partitions at a time and that state
/// grows to the whole backlog; aligned, it stays within the drift.
///
/// Pure decision logic (no I/O, no clock of its own): the engine reports every
/// partition's watermark it can see (its own source tasks', and the others'
/// through the watermark markers its repartition-fed tasks received), which
/// partitions it owns and where they stand, and performs the pauses and
/// resumes that `decide(nowMs:)` returns. Alignment only decides when records
/// are read, never what is computed from them: features and examples do not
/// depend on it.
///
/// Which partitions hold the group back (the floor is their minimum):
/// - not finished (a bounded run's final marker, or its own end);
/// - not at the end of its log (known for owned partitions only);
/// - active: its watermark advanced within `stallTimeoutMs` of wall time
///   (an owned partition without a watermark: since it was assigned). A
///   partition that stops advancing (idle, all-bad records, an owner that is
///   stuck) stops holding the others back after this timeout, so no pause
///   outlasts it;
/// - with a watermark. An owned partition without one (nothing read yet)
///   counts as the lowest possible, so every other owned partition waits
///   until it has reported; it is being fetched, so it reports, reaches its
///   end or times out. A partition of another instance that has not reported
///   holds nothing back: this instance cannot tell whether it is being read.
///
/// An owned partition is paused only when it has read a record since it was
/// assigned (librdkafka can lose the assigned start offset of a partition
/// paused before its first fetch), is neither finished nor at its end, and
/// runs ahead of the floor by more than the drift. The slowest counted
/// partition is never paused, so the floor always moves (or times out).
package struct WatermarkAlignment<Source: Hashable & Sendable>: Sendable {
    package struct Settings: Sendable, Equatable {
        /// Pause a partition whose watermark is more than this above the floor, event-time ms (> 0).
        package var maxDriftMs: Int64
        /// Resume a paused partition once its watermark is at most this above the floor (≤ maxDriftMs).
        package var resumeDriftMs: Int64
        /// Wall-time ms after which a partition whose watermark has not moved no longer holds others back.
        package var stallTimeoutMs: Int64

        /// `resumeDriftMs` is half the drift.
        package init(maxDriftMs: Int64, stallTimeoutMs: Int64) {
            precondition(maxDriftMs > 0 && stallTimeoutMs > 0, "alignment needs a positive drift and stall timeout")
            self.maxDriftMs = maxDriftMs
            self.resumeDriftMs = maxDriftMs / 2
            self.stallTimeoutMs = stallTimeoutMs
        }
    }

    /// The pauses and resumes to perform now (each partition at most once, owned ones only).
    package struct Decision: Sendable, Equatable {
        package var pause: [Source] = []
        package var resume: [Source] = []
        package var isEmpty: Bool { pause.isEmpty && resume.isEmpty }
        package init(pause: [Source] = [], resume: [Source] = []) {
            self.pause = pause
            self.resume = resume
        }
    }

    /// What holds the group back now.
    package enum Floor: Sendable, Equatable {
        /// Nothing: no partition counts (all finished, at their end, stalled or unreported elsewhere).
        case none
        /// An owned partition that counts has not reported a watermark yet.
        case unreported
        /// The minimum watermark of the partitions that count, epoch ms.
        case watermark(EventTimeMs)
    }

    /// One partition as this instance sees it.
    private struct View: Sendable {
        var watermark: EventTimeMs?
        /// Wall time of the last advance (or of assignment / first sight).
        var advancedMs: Int64
        var finished = false
    }

    /// What only the owner knows of a partition.
    private struct Owned: Sendable {
        var atEnd = false
        var hasRead = false
        var paused = false
    }

    package let settings: Settings
    private var views: [Source: View] = [:]
    private var owned: [Source: Owned] = [:]
    /// Partitions of a stage fed by the sources, run here (`observeDownstream`).
    private var downstream: Set<Source> = []

    package init(settings: Settings) {
        self.settings = settings
    }

    /// Owned partitions paused now.
    package var paused: Set<Source> { Set(owned.compactMap { $0.value.paused ? $0.key : nil }) }

    package func isPaused(_ source: Source) -> Bool { owned[source]?.paused ?? false }

    package func owns(_ source: Source) -> Bool { owned[source] != nil }

    // MARK: - Ownership

    /// This instance took the partition: it starts unpaused, unread, and its
    /// stall clock starts now. What other views said about it is forgotten
    /// (from now on its own task reports it: a rebuilt task starts over).
    package mutating func assign(_ source: Source, nowMs: Int64) {
        owned[source] = Owned()
        views[source] = View(watermark: nil, advancedMs: nowMs)
    }

    /// This instance gave the partition up (revoked, lost, dropped). Returns
    /// true when it was paused here: the caller resumes it in the consumer,
    /// since librdkafka keeps a partition's pause across a reassignment.
    @discardableResult
    package mutating func unassign(_ source: Source) -> Bool {
        let wasPaused = owned.removeValue(forKey: source)?.paused ?? false
        views[source] = nil
        downstream.remove(source)
        return wasPaused
    }

    /// A resume the consumer refused: the partition is still paused (retried at the next decision).
    package mutating func resumeFailed(_ source: Source) {
        owned[source]?.paused = true
    }

    /// A pause the consumer refused: the partition is still fetching.
    package mutating func pauseFailed(_ source: Source) {
        owned[source]?.paused = false
    }

    // MARK: - Observations

    /// A watermark seen for `source`, by its own task or through markers (the
    /// highest report wins; a lower one changes nothing). Reports about an
    /// owned partition from other views are ignored: use `observeOwned`.
    package mutating func observe(_ source: Source, watermark: EventTimeMs, nowMs: Int64) {
        guard owned[source] == nil else { return }
        advance(source, to: watermark, nowMs: nowMs)
    }

    /// The owned partition's state after a batch: its task's watermark (nil:
    /// nothing read), whether it has read a record since it was assigned,
    /// whether it is at the end of its log, and whether it finished (bounded run).
    package mutating func observeOwned(_ source: Source, watermark: EventTimeMs?, hasRead: Bool, atEnd: Bool,
                                       finished: Bool, nowMs: Int64) {
        guard var state = owned[source] else { return }
        state.hasRead = hasRead
        state.atEnd = atEnd
        owned[source] = state
        if let watermark { advance(source, to: watermark, nowMs: nowMs) }
        if finished { views[source, default: View(watermark: nil, advancedMs: nowMs)].finished = true }
    }

    /// A partition of a stage fed by the sources (the counts stage), run by
    /// this instance: its watermark is the sources' minimum as far as the
    /// stage has consumed their markers. It is part of the floor, so sources
    /// do not run ahead of what that stage has read (back-pressure: reading a
    /// backlog, a repartition topic is fetched far behind the source topics,
    /// and the stage's held records and the item tasks' join grow with the
    /// gap). Unreported, it holds the group back like an owned partition
    /// (until the stall timeout); it is never paused itself.
    package mutating func observeDownstream(_ source: Source, watermark: EventTimeMs?, nowMs: Int64) {
        if downstream.insert(source).inserted, views[source] == nil {
            views[source] = View(watermark: nil, advancedMs: nowMs)
        }
        if let watermark { advance(source, to: watermark, nowMs: nowMs) }
    }

    /// A partition of another instance announced the end of a bounded run.
    package mutating func markFinished(_ source: Source, nowMs: Int64) {
        guard owned[source] == nil else { return }
        views[source, default: View(watermark: nil, advancedMs: nowMs)].finished = true
    }

    private mutating func advance(_ source: Source, to watermark: EventTimeMs, nowMs: Int64) {
        var view = views[source] ?? View(watermark: nil, advancedMs: nowMs)
        if view.watermark.map({ watermark > $0 }) ?? true {
            view.watermark = watermark
            view.advancedMs = nowMs
        }
        views[source] = view
    }

    // MARK: - Decisions

    /// What holds the group back at `nowMs` (see the type's rules).
    package func floor(nowMs: Int64) -> Floor {
        var minimum: EventTimeMs?
        var unreported = false
        for (source, view) in views {
            if view.finished { continue }
            let own = owned[source]
            if own?.atEnd == true { continue }
            if nowMs &- view.advancedMs >= settings.stallTimeoutMs { continue }
            guard let watermark = view.watermark else {
                if own != nil || downstream.contains(source) { unreported = true }
                continue
            }
            minimum = min(minimum ?? watermark, watermark)
        }
        if unreported { return .unreported }
        return minimum.map { .watermark($0) } ?? .none
    }

    /// Decides which owned partitions to pause and resume now, and records the
    /// outcome as done (report refusals with `pauseFailed` / `resumeFailed`).
    package mutating func decide(nowMs: Int64) -> Decision {
        let floor = floor(nowMs: nowMs)
        var decision = Decision()
        for (source, state) in owned {
            let view = views[source]
            var pause = false
            if let watermark = view?.watermark, view?.finished != true, state.hasRead, !state.atEnd {
                switch floor {
                case .none:
                    pause = false
                case .unreported:
                    pause = true
                case .watermark(let low):
                    let allowed = state.paused ? settings.resumeDriftMs : settings.maxDriftMs
                    pause = watermark > low &+ allowed
                }
            }
            guard pause != state.paused else { continue }
            owned[source]?.paused = pause
            if pause { decision.pause.append(source) } else { decision.resume.append(source) }
        }
        return decision
    }
}
