import FreshetCore
import HeapModule

/// Online join of impressions with interactions by (user, item), Monolith-style.
///
/// - A positive action on an impressed item inside the join window is a positive
///   example carrying the impression's position, request and serving features.
/// - `skip` is a negative example at once.
/// - An impressed item with no engagement (no positive action, no skip) when the
///   window closes — when the watermark passes `impressionTs + window` — is a
///   negative, emitted by `advance(watermark:)`.
/// - Interactions without an impression still produce examples (positive, or
///   negative for `skip`), without impression context.
/// - A positive whose impression has already closed (or whose ts is past the
///   window) is still emitted as a positive, flagged `late`, carrying the
///   impression context for `lateTTL` after the close.
///
/// State is bounded: a pending impression lives until its window closes; a closed
/// impression leaves a tombstone that expires `lateTTL` after the close. A
/// repeated impression of a pending (user, item) is folded into the first one.
/// The state survives a crash or a move of its task through `encode` and
/// `restore` (ImpressionJoiner+Checkpoint.swift).
///
/// Layout (why it is compact): users, items and request ids are interned to
/// 32-bit slots that are recycled when their last entry leaves; a (user, item)
/// is one `UInt64` key; an entry, pending or tombstone, is one 48-byte
/// `JoinEntry` in one `JoinEntryTable`, and each deadline one 24-byte node of a `Heap` (swift-collections).
/// About 200 bytes an entry in all (`approximateBytes`, growth slack included),
/// against ~450 before (measured as RSS; docs/EMBEDDINGS.md).
package final class ImpressionJoiner {
    /// Join window in event-time milliseconds (default 10 minutes).
    package let windowMs: Int64
    /// How long after the close a late positive still finds its impression's context.
    package let lateTTLMs: Int64

    // Internal, not private: the checkpoint codec (ImpressionJoiner+Checkpoint.swift) reads and rebuilds them.
    let users = CountedInterner()
    let items = CountedInterner()
    let requests = CountedInterner()
    // Owned by one item task's processing thread, never touched concurrently
    // or reentrantly: no dynamic exclusivity checks (swift_beginAccess and its
    // access set were ~6% of the default topology's item stage, `bench tasks`).
    /// (user slot << 32 | item slot) → entry (`JoinEntryTable`: no SipHash per lookup).
    @exclusivity(unchecked) var entries = JoinEntryTable()
    @exclusivity(unchecked) var closeHeap = Heap<JoinDeadline>()
    @exclusivity(unchecked) var expiryHeap = Heap<JoinDeadline>()
    @exclusivity(unchecked) var seq: UInt32 = 0
    @exclusivity(unchecked) package internal(set) var watermark: Int64 = Int64.min
    @exclusivity(unchecked) package internal(set) var pendingCount = 0

    // Counters (metrics).
    @exclusivity(unchecked) package private(set) var positivesEmitted = 0
    @exclusivity(unchecked) package private(set) var negativesEmitted = 0
    @exclusivity(unchecked) package private(set) var latePositives = 0
    @exclusivity(unchecked) package private(set) var duplicateImpressions = 0
    /// Largest `stateCount` seen.
    @exclusivity(unchecked) package internal(set) var peakStateCount = 0

    package init(windowMs: Int64 = 10 * 60 * 1000, lateTTLMs: Int64 = 60 * 60 * 1000) {
        precondition(windowMs > 0 && lateTTLMs >= 0)
        self.windowMs = windowMs
        self.lateTTLMs = lateTTLMs
    }

    /// Tombstones of closed impressions kept for late positives.
    package var closedCount: Int { entries.count - pendingCount }
    /// Everything the joiner holds; bounded by the impressions of the last
    /// `window + lateTTL` of event time behind the watermark, plus those ahead of it.
    package var stateCount: Int { entries.count }
    /// Distinct users and items referenced by the state.
    package var liveIds: (users: Int, items: Int) { (users.liveCount, items.liveCount) }

    /// Approximate bytes held: entries (every bucket of the map, a key and an
    /// optional entry each), heap nodes, interned ids.
    package var approximateBytes: Int {
        entries.bucketCount * (8 + MemoryLayout<JoinEntry?>.stride)
            + (closeHeap.count + expiryHeap.count) * MemoryLayout<JoinDeadline>.stride
            + users.approximateBytes + items.approximateBytes + requests.approximateBytes
    }

    @inline(__always)
    static func key(_ user: UInt32, _ item: UInt32) -> UInt64 { UInt64(user) << 32 | UInt64(item) }

    private func key(userId: String, itemId: String) -> UInt64? {
        guard let u = users.slot(of: userId), let i = items.slot(of: itemId) else { return nil }
        return Self.key(u, i)
    }

    /// Releases the interned slots an entry holds (it is leaving the state).
    func releaseIds(_ key: UInt64, _ entry: JoinEntry) {
        users.release(UInt32(truncatingIfNeeded: key >> 32))
        items.release(UInt32(truncatingIfNeeded: key))
        if entry.request != 0 { requests.release(entry.request - 1) }
    }

    /// Records that `itemId` was shown to `userId`. `features` are the serving
    /// features as of now (the caller reads them from its own state).
    package func recordImpression(userId: String, itemId: String, position: Int?, requestId: String?,
                                 ts: Int64, features: ServingFeatures?) {
        let u = users.retain(userId), i = items.retain(itemId)
        let k = Self.key(u, i)
        if let old = entries[k] {
            if !old.has(JoinEntry.closed) {
                duplicateImpressions += 1
                users.release(u); items.release(i)
                return
            }
            // A new impression replaces the tombstone (its expiry node goes stale).
            releaseIds(k, old)
        } else {
            peakStateCount = max(peakStateCount, entries.count + 1)
        }
        seq &+= 1
        var entry = JoinEntry(impressionTs: ts, interactionCount: 0, popularity7d: 0, impressions7d: 0,
                              seq: seq, request: 0, position: 0, flags: 0)
        if let requestId { entry.request = requests.retain(requestId) + 1 }
        if let position, let p = Int32(exactly: position) {
            entry.position = p
            entry.flags |= JoinEntry.hasPosition
        }
        if let features {
            entry.interactionCount = features.interactionCount
            entry.popularity7d = features.popularity7d
            entry.impressions7d = features.impressions7d
            entry.flags |= JoinEntry.hasFeatures
        }
        entries[k] = entry
        pendingCount += 1
        closeHeap.insert(.init(deadline: ts &+ windowMs, key: k, seq: seq))
    }

    /// Records every item of an impression; `features(itemId)` supplies the serving
    /// features of each shown item.
    /// An item's position is its entry in `positions`, nil when the impression
    /// carried none (as in the processor's item stage).
    package func recordImpression(_ e: Impression, features: (String) -> ServingFeatures? = { _ in nil }) {
        for (i, item) in e.itemsShown.enumerated() {
            recordImpression(userId: e.userId, itemId: item, position: e.position(at: i).map(Int.init),
                             requestId: e.requestId, ts: e.ts, features: features(item))
        }
    }

    /// Joins an interaction; always returns one example (positive for a positive
    /// action, negative for `skip`).
    package func recordInteraction(_ e: Interaction) -> TrainingExample {
        let label: ExampleLabel = e.action.isPositive ? .positive : .negative
        var ex = TrainingExample(label: label, userId: e.userId, itemId: e.itemId, action: e.action,
                                 dwellMs: e.dwellMs, requestId: e.requestId, eventTs: e.ts)
        if let k = key(userId: e.userId, itemId: e.itemId), var entry = entries[k] {
            ex.position = entry.positionValue
            if ex.requestId == nil && entry.request != 0 { ex.requestId = requests[entry.request - 1] }
            ex.impressionTs = entry.impressionTs
            ex.features = entry.features
            if entry.has(JoinEntry.closed) {
                ex.late = e.action.isPositive
            } else if e.ts > entry.impressionTs &+ windowMs {
                // Outside the window: the impression will still close as a negative.
                ex.late = e.action.isPositive
            } else if !entry.has(JoinEntry.engaged) {
                entry.flags |= JoinEntry.engaged
                entries[k] = entry
            }
        }
        if ex.late { latePositives += 1 }
        if label == .positive { positivesEmitted += 1 } else { negativesEmitted += 1 }
        return ex
    }

    /// Advances event time: closes every window with `impressionTs + window <= watermark`,
    /// returning a negative example for each impressed item that got no engagement,
    /// and expires tombstones older than `lateTTL`.
    package func advance(watermark newWatermark: Int64) -> [TrainingExample] {
        guard newWatermark > watermark else { return [] }
        watermark = newWatermark
        var out: [TrainingExample] = []
        while let next = closeHeap.min, next.deadline <= newWatermark, let node = closeHeap.popMin() {
            guard var entry = entries[node.key], entry.seq == node.seq, !entry.has(JoinEntry.closed) else { continue }
            pendingCount -= 1
            if !entry.has(JoinEntry.engaged) {
                out.append(TrainingExample(label: .negative, userId: users[UInt32(truncatingIfNeeded: node.key >> 32)],
                                           itemId: items[UInt32(truncatingIfNeeded: node.key)],
                                           action: nil, position: entry.positionValue,
                                           requestId: entry.request == 0 ? nil : requests[entry.request - 1],
                                           impressionTs: entry.impressionTs, eventTs: node.deadline,
                                           features: entry.features))
                negativesEmitted += 1
            }
            let expiry = node.deadline &+ lateTTLMs
            if lateTTLMs > 0 && expiry > newWatermark {
                entry.flags |= JoinEntry.closed
                entries[node.key] = entry
                expiryHeap.insert(.init(deadline: expiry, key: node.key, seq: entry.seq))
            } else {
                // No tombstone, or one that would already be expired (an impression
                // that arrived more than window + lateTTL behind the watermark).
                entries.removeValue(forKey: node.key)
                releaseIds(node.key, entry)
            }
        }
        while let next = expiryHeap.min, next.deadline <= newWatermark, let node = expiryHeap.popMin() {
            guard let entry = entries[node.key], entry.seq == node.seq, entry.has(JoinEntry.closed) else { continue }
            entries.removeValue(forKey: node.key)
            releaseIds(node.key, entry)
        }
        return out
    }
}
