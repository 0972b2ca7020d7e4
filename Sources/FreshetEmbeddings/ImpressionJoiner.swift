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
/// - A positive known after its impression's window (its ts past it, or, for
///   a late event, the time the counts stage says it is known) is still
///   emitted as a positive, flagged `late`, carrying the impression context
///   if known within `lateTTL` after the close. Deciding by known-from
///   times, never by whether the watermark happened to close the window
///   first, keeps the examples independent of how partitions interleave.
///
/// The join is by (user, item): each pair has at most one current impression
/// (its *owner*). A repeated impression of a (user, item) within the window
/// of the pending first one is folded into it; one after that window (in
/// event time, whether or not the watermark has closed it yet) becomes the
/// owner, the first one still closing with its own outcome; an impression of
/// a pair whose owner has closed takes over from that tombstone. State is bounded: a pending impression lives
/// until its window closes; a closed one stays as a tombstone until `lateTTL`
/// after the close.
///
/// Layout: one entry per impression (an `ImpressionGroup`: the user, time,
/// request id and deadlines once, the shown items it owns inline), not one
/// per shown item; a user's impressions are chained newest first, so an
/// interaction finds its owner among the user's few open or closed
/// impressions (a 64-bit filter of the items each one owns skips most of
/// them without comparing ids; a user with more than `ownerIndexThreshold`
/// live impressions gets an index of their owned items instead). Per
/// impression, not per item: one interned user, one deadline per close and
/// expiry. The state survives a crash or a
/// move of its task through `encode` and `restore`
/// (ImpressionJoiner+Checkpoint.swift). Owned by one thread.
package final class ImpressionJoiner {
    /// One shown item of an impression, as the caller records it.
    package struct ShownItem: Sendable {
        package var itemId: String
        package var position: Int32?
        package var features: ServingFeatures?
        package init(itemId: String, position: Int32?, features: ServingFeatures?) {
            self.itemId = itemId
            self.position = position
            self.features = features
        }
    }

    /// Join window in event-time milliseconds (default 10 minutes).
    package let windowMs: Int64
    /// How long after the close a late positive still finds its impression's context.
    package let lateTTLMs: Int64

    // Internal, not private: the checkpoint codec (ImpressionJoiner+Checkpoint.swift)
    // reads and rebuilds them. Owned by one task's thread, never touched
    // concurrently or reentrantly: no dynamic exclusivity checks.
    /// User ids → slot; a slot's reference count is its live impressions.
    let users = CountedInterner()
    /// Per user slot, its newest live impression (an index into `groups`), -1 for none.
    @exclusivity(unchecked) var newestOfUser: [Int32] = []
    /// Per user slot, how many live impressions its chain holds.
    @exclusivity(unchecked) var chainLength: [Int32] = []
    /// For users whose chain is longer than `ownerIndexThreshold`: each
    /// owned item's impression, so finding an owner does not walk the chain
    /// (a heavy user, hundreds of impressions within window + late TTL,
    /// made every lookup walk them all). Dropped when the chain shrinks to
    /// half the threshold.
    @exclusivity(unchecked) var ownerIndex: [UInt32: [ExactId: Int32]] = [:]
    /// Chain length above which a user's owners are indexed.
    let ownerIndexThreshold: Int
    /// Impressions; a freed index is on `freeGroups` (its `items` empty).
    @exclusivity(unchecked) var groups: [ImpressionGroup] = []
    @exclusivity(unchecked) var freeGroups: [Int32] = []
    @exclusivity(unchecked) var closeHeap = Heap<GroupDeadline>()
    @exclusivity(unchecked) var expiryHeap = Heap<GroupDeadline>()
    @exclusivity(unchecked) var seq: UInt32 = 0
    @exclusivity(unchecked) package internal(set) var watermark: Int64 = Int64.min
    /// Owned items of pending impressions / of tombstones.
    @exclusivity(unchecked) package internal(set) var pendingCount = 0
    @exclusivity(unchecked) package internal(set) var closedCount = 0

    // Counters (metrics).
    @exclusivity(unchecked) package private(set) var positivesEmitted = 0
    @exclusivity(unchecked) package private(set) var negativesEmitted = 0
    @exclusivity(unchecked) package private(set) var latePositives = 0
    @exclusivity(unchecked) package private(set) var duplicateImpressions = 0
    /// Largest `stateCount` seen.
    @exclusivity(unchecked) package internal(set) var peakStateCount = 0

    /// - Parameter ownerIndexThreshold: a user's live impressions above
    ///   which their owned items are indexed (tests lower it to exercise the index).
    /// How long after its window's close an impression's context stays for late positives, by default (1 h).
    package static let defaultLateTTLMs: Int64 = 60 * 60 * 1000

    package init(windowMs: Int64 = 10 * 60 * 1000, lateTTLMs: Int64 = ImpressionJoiner.defaultLateTTLMs, ownerIndexThreshold: Int = 24) {
        precondition(windowMs > 0 && lateTTLMs >= 0 && ownerIndexThreshold >= 1)
        self.windowMs = windowMs
        self.lateTTLMs = lateTTLMs
        self.ownerIndexThreshold = ownerIndexThreshold
    }

    /// (user, item) pairs the joiner holds, pending or tombstone; bounded by
    /// the impressions of the last `window + lateTTL` of event time behind the
    /// watermark, plus those ahead of it.
    package var stateCount: Int { pendingCount + closedCount }
    /// Distinct users and impressions the state holds.
    package var liveIds: (users: Int, impressions: Int) { (users.liveCount, groups.count - freeGroups.count) }

    /// Records that the `items` were shown to `userId` at `ts` in one
    /// impression (or one item partition's share of it). Each item's
    /// `features` are the serving features as of now (the caller reads them
    /// from its own state).
    /// `knownAt`: when a late impression is known (its ts when nil; see
    /// `recordInteraction`): a repeat is folded into a pending impression
    /// only when known within that one's window.
    package func recordImpression(userId: String, requestId: String?, ts: Int64, knownAt: Int64? = nil, items: [ShownItem]) {
        guard !items.isEmpty else { return }
        let known = max(knownAt ?? ts, ts)
        let user = retainUser(userId)
        seq &+= 1
        let g = allocateGroup(ImpressionGroup(user: user, ts: ts, seq: seq, requestId: requestId,
                                              next: newestOfUser[Int(user)]))
        link(g)
        groups[Int(g)].items.reserveCapacity(items.count)
        var owned = 0
        for shown in items {
            let filter = Self.filterBit(shown.itemId)
            if let (og, oi) = owner(user: user, itemId: shown.itemId, filter: filter) {
                let first = groups[Int(og)]
                if og == g {
                    // The item twice in this one list: the same impression of the pair.
                    duplicateImpressions += 1
                    continue
                } else if first.closed {
                    // A new impression takes over from the tombstone.
                    disown(og, oi)
                } else if known <= first.ts &+ windowMs {
                    // Shown again within the first one's window: folded into it.
                    duplicateImpressions += 1
                    continue
                } else {
                    // Shown again after the first one's window ended in event
                    // time (or known only after it: late), before the join's
                    // watermark closed it (it lags the records in a replay):
                    // the first one still closes as it would, and this one
                    // owns the pair from now on, as if the first had closed.
                    groups[Int(og)].items[oi].flags |= ImpressionGroup.Item.superseded
                }
            }
            groups[Int(g)].append(shown, filter: filter)
            if ownerIndex[user] != nil { ownerIndex[user]?[ExactId(shown.itemId)] = g }
            owned += 1
        }
        guard owned > 0 else {
            // Every item was a repeat of a pending impression: nothing to keep.
            freeGroup(g)
            return
        }
        pendingCount += owned
        peakStateCount = max(peakStateCount, stateCount)
        closeHeap.insert(GroupDeadline(deadline: ts &+ windowMs, group: g, seq: seq))
    }

    /// Records every item of an impression; `features(itemId)` supplies the serving
    /// features of each shown item.
    package func recordImpression(_ e: Impression, features: (String) -> ServingFeatures? = { _ in nil }) {
        let items = e.itemsShown.enumerated().map { k, item in
            ShownItem(itemId: item, position: e.position(at: k), features: features(item))
        }
        recordImpression(userId: e.userId, requestId: e.requestId, ts: e.ts, items: items)
    }

    /// Joins an interaction; always returns one example (positive for a positive
    /// action, negative for `skip`).
    ///
    /// `knownAt`: when a late interaction is known (nil: at its ts), as the
    /// counts stage stamps it (`BoundedOutOfOrdernessWatermark.knownAt`). The
    /// join decides by it, never by whether the watermark happened to close
    /// the window before the record arrived: an interaction known within its
    /// impression's window always arrives before the close (the watermark
    /// passes it only after), one known after it is late, and one known after
    /// the tombstone's expiry gets no impression context. So the examples do
    /// not depend on how the partitions' records interleave. An interaction
    /// with an earlier time than the pair's impression is not a response to
    /// it and gets no context either (on time it would have arrived first).
    package func recordInteraction(_ e: Interaction, knownAt: Int64? = nil) -> TrainingExample {
        let label: ExampleLabel = e.action.isPositive ? .positive : .negative
        var ex = TrainingExample(label: label, userId: e.userId, itemId: e.itemId, action: e.action,
                                 dwellMs: e.dwellMs, requestId: e.requestId, eventTs: e.ts)
        let known = max(knownAt ?? e.ts, e.ts)
        if let user = users.slot(of: e.userId),
           let (g, i) = owner(user: user, itemId: e.itemId, filter: Self.filterBit(e.itemId)),
           e.ts >= groups[Int(g)].ts, known <= groups[Int(g)].ts &+ windowMs &+ lateTTLMs {
            let group = groups[Int(g)]
            let item = group.items[i]
            ex.position = item.positionValue
            if ex.requestId == nil { ex.requestId = group.requestId }
            ex.impressionTs = group.ts
            ex.features = item.features
            if group.closed {
                ex.late = e.action.isPositive
            } else if known > group.ts &+ windowMs {
                // Outside the window (or known only after it): the impression
                // will still close as a negative.
                ex.late = e.action.isPositive
            } else if !item.has(ImpressionGroup.Item.engaged) {
                groups[Int(g)].items[i].flags |= ImpressionGroup.Item.engaged
            }
        }
        if ex.late { latePositives += 1 }
        if label == .positive { positivesEmitted += 1 } else { negativesEmitted += 1 }
        return ex
    }

    /// Advances event time: closes every window with `impressionTs + window <= watermark`,
    /// returning a negative example for each impressed item that got no engagement,
    /// and expires tombstones older than `lateTTL`. A watermark equal to the
    /// current one closes the windows recorded since that it already passed
    /// (a late impression released at the end of a bounded run, when the
    /// watermark had already reached the final one); a lower one is ignored.
    package func advance(watermark newWatermark: Int64) -> [TrainingExample] {
        var out: [TrainingExample] = []
        advance(watermark: newWatermark) { out.append($0) }
        return out
    }

    /// `advance(watermark:)` handing each negative to `emit` as its window
    /// closes, in the same order. The item task writes them out at once: an
    /// array of a step's examples (thousands) grew by copying, and each
    /// example was copied in and out of it (~2% of the default topology's
    /// task layer, `freshet bench tasks --only 2`). `emit` must not call
    /// back into the joiner.
    package func advance(watermark newWatermark: Int64, emit: (TrainingExample) -> Void) {
        guard newWatermark >= watermark else { return }
        watermark = newWatermark
        while let next = closeHeap.min, next.deadline <= newWatermark, let node = closeHeap.popMin() {
            let g = Int(node.group)
            guard groups[g].seq == node.seq, !groups[g].items.isEmpty, !groups[g].closed else { continue }
            let group = groups[g]
            pendingCount -= group.items.count
            let userId = users[group.user]
            for item in group.items where !item.has(ImpressionGroup.Item.engaged) {
                emit(TrainingExample(label: .negative, userId: userId, itemId: item.itemId, action: nil,
                                     position: item.positionValue, requestId: group.requestId,
                                     impressionTs: group.ts, eventTs: node.deadline, features: item.features))
                negativesEmitted += 1
            }
            let expiry = node.deadline &+ lateTTLMs
            // Superseded items have a newer owner: they keep no tombstone.
            if group.superseded { groups[g].items.removeAll { $0.has(ImpressionGroup.Item.superseded) } }
            if lateTTLMs > 0 && expiry > newWatermark && !groups[g].items.isEmpty {
                groups[g].closed = true
                closedCount += groups[g].items.count
                expiryHeap.insert(GroupDeadline(deadline: expiry, group: node.group, seq: node.seq))
            } else {
                // No tombstone, or one that would already be expired (an impression
                // that arrived more than window + lateTTL behind the watermark).
                freeGroup(node.group)
            }
        }
        while let next = expiryHeap.min, next.deadline <= newWatermark, let node = expiryHeap.popMin() {
            let g = Int(node.group)
            guard groups[g].seq == node.seq, !groups[g].items.isEmpty, groups[g].closed else { continue }
            closedCount -= groups[g].items.count
            freeGroup(node.group)
        }
    }

    // MARK: - Impressions and owners

    /// A 64-bit filter's bit for an item id (from the features' id hash).
    @inline(__always)
    static func filterBit(_ itemId: String) -> UInt64 { 1 << UInt64(KeyIndex.tag(itemId) & 63) }

    /// The impression and item index that own (user, item), if any: the
    /// user's impressions newest first, each skipped unless its filter has the bit.
    func owner(user: UInt32, itemId: String, filter: UInt64) -> (Int32, Int)? {
        if let index = ownerIndex[user] {
            guard let g = index[ExactId(itemId)],
                  let i = groups[Int(g)].items.firstIndex(where: { !$0.has(ImpressionGroup.Item.superseded) && IdBytes.equal($0.itemId, itemId) })
            else { return nil }
            return (g, i)
        }
        var g = newestOfUser[Int(user)]
        while g >= 0 {
            let group = groups[Int(g)]
            if group.filter & filter != 0,
               let i = group.items.firstIndex(where: { !$0.has(ImpressionGroup.Item.superseded) && IdBytes.equal($0.itemId, itemId) }) {
                return (g, i)
            }
            g = group.next
        }
        return nil
    }

    /// The item leaves its (closed) impression: a newer impression owns its pair now.
    private func disown(_ g: Int32, _ i: Int) {
        groups[Int(g)].items.remove(at: i)
        closedCount -= 1
        // The filter keeps the item's bit (it only skips impressions). An
        // impression left with no item is gone (its expiry node goes stale).
        if groups[Int(g)].items.isEmpty { freeGroup(g) }
    }

    /// The user's slot, one more reference taken; a slot's chain starts empty.
    func retainUser(_ userId: String) -> UInt32 {
        let user = users.retain(userId)
        while newestOfUser.count <= Int(user) {
            newestOfUser.append(-1)
            chainLength.append(0)
        }
        return user
    }

    /// Puts impression `g` at the head of its user's chain; the user's owners
    /// are indexed once the chain is long (its owned items included).
    func link(_ g: Int32) {
        let user = groups[Int(g)].user
        newestOfUser[Int(user)] = g
        chainLength[Int(user)] += 1
        if ownerIndex[user] != nil {
            for item in groups[Int(g)].items where !item.has(ImpressionGroup.Item.superseded) {
                ownerIndex[user]?[ExactId(item.itemId)] = g
            }
        } else if Int(chainLength[Int(user)]) > ownerIndexThreshold {
            var index: [ExactId: Int32] = [:]
            var c = g
            while c >= 0 {
                for item in groups[Int(c)].items where !item.has(ImpressionGroup.Item.superseded) {
                    index[ExactId(item.itemId)] = c
                }
                c = groups[Int(c)].next
            }
            ownerIndex[user] = index
        }
    }

    func allocateGroup(_ group: ImpressionGroup) -> Int32 {
        if let g = freeGroups.popLast() {
            groups[Int(g)] = group
            return g
        }
        groups.append(group)
        return Int32(groups.count - 1)
    }

    /// Unlinks the impression from its user's chain, releases the user, and frees the index.
    func freeGroup(_ g: Int32) {
        let user = groups[Int(g)].user
        let next = groups[Int(g)].next
        chainLength[Int(user)] -= 1
        if ownerIndex[user] != nil {
            if Int(chainLength[Int(user)]) * 2 <= ownerIndexThreshold {
                ownerIndex[user] = nil
            } else {
                for item in groups[Int(g)].items where ownerIndex[user]?[ExactId(item.itemId)] == g {
                    ownerIndex[user]?[ExactId(item.itemId)] = nil
                }
            }
        }
        if newestOfUser[Int(user)] == g {
            newestOfUser[Int(user)] = next
        } else {
            var p = newestOfUser[Int(user)]
            while p >= 0 && groups[Int(p)].next != g { p = groups[Int(p)].next }
            if p >= 0 { groups[Int(p)].next = next }
        }
        users.release(user)
        groups[Int(g)] = ImpressionGroup(user: 0, ts: 0, seq: 0, requestId: nil, next: -1)
        freeGroups.append(g)
    }
}

/// One impression in the joiner: the user, time and request id once, the
/// shown items it owns inline.
struct ImpressionGroup {
    struct Item {
        var itemId: String
        var interactionCount: Int64 = 0
        var popularity7d: Int64 = 0
        var impressions7d: Int64 = 0
        var position: Int32 = 0
        var flags: UInt8 = 0

        static let hasPosition: UInt8 = 1
        static let hasFeatures: UInt8 = 2
        static let engaged: UInt8 = 4
        /// A newer impression of the same user owns the item now; this one only closes.
        static let superseded: UInt8 = 8

        func has(_ flag: UInt8) -> Bool { flags & flag != 0 }

        var features: ServingFeatures? {
            has(Self.hasFeatures)
                ? ServingFeatures(interactionCount: interactionCount, popularity7d: popularity7d, impressions7d: impressions7d)
                : nil
        }

        var positionValue: Int? { has(Self.hasPosition) ? Int(position) : nil }
    }

    var user: UInt32
    var ts: Int64
    /// Matches deadline nodes to the impression they were pushed for (an
    /// index is reused once freed).
    var seq: UInt32
    var requestId: String?
    /// The user's next older impression, -1 for none.
    var next: Int32
    var closed = false
    /// One bit per owned item (`ImpressionJoiner.filterBit`), never cleared.
    var filter: UInt64 = 0
    /// The shown items this impression owns (or owned until superseded), in
    /// the order shown. Empty only for a freed index.
    var items: [Item] = []

    /// Some item was superseded by a newer impression (pending only).
    var superseded: Bool { items.contains { $0.has(Item.superseded) } }

    init(user: UInt32, ts: Int64, seq: UInt32, requestId: String?, next: Int32) {
        self.user = user
        self.ts = ts
        self.seq = seq
        self.requestId = requestId
        self.next = next
    }

    mutating func append(_ shown: ImpressionJoiner.ShownItem, filter bit: UInt64) {
        var item = Item(itemId: shown.itemId)
        if let position = shown.position {
            item.position = position
            item.flags |= Item.hasPosition
        }
        if let f = shown.features {
            item.interactionCount = f.interactionCount
            item.popularity7d = f.popularity7d
            item.impressions7d = f.impressions7d
            item.flags |= Item.hasFeatures
        }
        items.append(item)
        filter |= bit
    }
}

/// A deadline of the joiner: the window close or the tombstone expiry of the
/// impression `group` as pushed with `seq`. Ordered by deadline; a node whose
/// impression was freed since (other `seq`) is skipped when popped.
struct GroupDeadline: Comparable {
    var deadline: Int64
    var group: Int32
    var seq: UInt32

    static func < (a: GroupDeadline, b: GroupDeadline) -> Bool { a.deadline < b.deadline }
    static func == (a: GroupDeadline, b: GroupDeadline) -> Bool { a.deadline == b.deadline }
}
