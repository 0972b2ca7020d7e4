import FreshetCore

/// Min-heap keyed by an Int64 deadline (event time). Entries are invalidated lazily
/// through a sequence number, so removal from the dictionaries is O(1).
struct DeadlineHeap<Payload> {
    struct Entry { var deadline: Int64; var seq: UInt64; var payload: Payload }
    /// The heap orders small (deadline, seq, slot) records; payloads (ids:
    /// Strings) stay put in `slots`, so sifting moves no reference-counted values.
    private struct Node { var deadline: Int64; var seq: UInt64; var slot: Int32 }
    private var nodes: [Node] = []
    private var slots: [Payload?] = []
    private var freeSlots: [Int32] = []

    var count: Int { nodes.count }
    var peekDeadline: Int64? { nodes.first?.deadline }

    mutating func push(_ e: Entry) {
        let slot: Int32
        if let reused = freeSlots.popLast() { slot = reused; slots[Int(reused)] = e.payload } else {
            slot = Int32(slots.count); slots.append(e.payload)
        }
        let node = Node(deadline: e.deadline, seq: e.seq, slot: slot)
        var i = nodes.count
        nodes.append(node)
        // Hole sift-up: move parents down, place the new node once.
        while i > 0 {
            let p = (i - 1) / 2
            if nodes[p].deadline <= node.deadline { break }
            nodes[i] = nodes[p]; i = p
        }
        nodes[i] = node
    }

    mutating func pop() -> Entry? {
        guard let top = nodes.first else { return nil }
        let last = nodes.removeLast()
        let n = nodes.count
        if n > 0 {
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = l
                if l >= n { break }
                if r < n && nodes[r].deadline < nodes[l].deadline { m = r }
                if nodes[m].deadline >= last.deadline { break }
                nodes[i] = nodes[m]; i = m
            }
            nodes[i] = last
        }
        let payload = slots[Int(top.slot)]!
        slots[Int(top.slot)] = nil
        freeSlots.append(top.slot)
        return Entry(deadline: top.deadline, seq: top.seq, payload: payload)
    }
}

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
/// impression leaves a small tombstone that expires `lateTTL` after the close. A
/// repeated impression of a pending (user, item) is folded into the first one.
public final class ImpressionJoiner {
    /// Compared and hashed by the ids' bytes (ids are byte strings, `IdBytes`).
    public struct Key: Hashable, Sendable {
        public var userId: String
        public var itemId: String
        public init(userId: String, itemId: String) { self.userId = userId; self.itemId = itemId }
        public static func == (a: Key, b: Key) -> Bool {
            IdBytes.equal(a.userId, b.userId) && IdBytes.equal(a.itemId, b.itemId)
        }
        public func hash(into hasher: inout Hasher) {
            IdBytes.hash(userId, into: &hasher)
            IdBytes.hash(itemId, into: &hasher)
        }
    }

    struct Pending {
        var requestId: String?
        var position: Int?
        var impressionTs: Int64
        var features: ServingFeatures?
        var engaged: Bool
        var seq: UInt64
    }

    struct Closed {
        var requestId: String?
        var position: Int?
        var impressionTs: Int64
        var features: ServingFeatures?
        var seq: UInt64
    }

    /// Join window in event-time milliseconds (default 10 minutes).
    public let windowMs: Int64
    /// How long after the close a late positive still finds its impression's context.
    public let lateTTLMs: Int64

    private var pending: [Key: Pending] = [:]
    private var closed: [Key: Closed] = [:]
    private var closeHeap = DeadlineHeap<Key>()
    private var expiryHeap = DeadlineHeap<Key>()
    private var seq: UInt64 = 0
    public private(set) var watermark: Int64 = Int64.min

    // Counters (metrics).
    public private(set) var positivesEmitted = 0
    public private(set) var negativesEmitted = 0
    public private(set) var latePositives = 0
    public private(set) var duplicateImpressions = 0

    public init(windowMs: Int64 = 10 * 60 * 1000, lateTTLMs: Int64 = 60 * 60 * 1000) {
        precondition(windowMs > 0 && lateTTLMs >= 0)
        self.windowMs = windowMs
        self.lateTTLMs = lateTTLMs
    }

    /// Pending (open-window) impressions.
    public var pendingCount: Int { pending.count }
    /// Tombstones of closed impressions kept for late positives.
    public var closedCount: Int { closed.count }
    /// Everything the joiner holds; bounded by the impressions of the last
    /// `window + lateTTL` of event time.
    public var stateCount: Int { pending.count + closed.count }

    /// Records that `itemId` was shown to `userId`. `features` are the serving
    /// features as of now (the caller reads them from its own state).
    public func recordImpression(userId: String, itemId: String, position: Int?, requestId: String?,
                                 ts: Int64, features: ServingFeatures?) {
        let key = Key(userId: userId, itemId: itemId)
        if pending[key] != nil { duplicateImpressions += 1; return }
        closed.removeValue(forKey: key)
        seq &+= 1
        pending[key] = Pending(requestId: requestId, position: position, impressionTs: ts,
                               features: features, engaged: false, seq: seq)
        closeHeap.push(.init(deadline: ts &+ windowMs, seq: seq, payload: key))
    }

    /// Records every item of an impression; `features(itemId)` supplies the serving
    /// features of each shown item.
    /// An item's position is its entry in `positions`, nil when the impression
    /// carried none (as in the processor's item stage).
    public func recordImpression(_ e: Impression, features: (String) -> ServingFeatures? = { _ in nil }) {
        for (i, item) in e.itemsShown.enumerated() {
            recordImpression(userId: e.userId, itemId: item, position: e.position(at: i).map(Int.init),
                             requestId: e.requestId, ts: e.ts, features: features(item))
        }
    }

    /// Joins an interaction; always returns one example (positive for a positive
    /// action, negative for `skip`).
    public func recordInteraction(_ e: Interaction) -> TrainingExample {
        let key = Key(userId: e.userId, itemId: e.itemId)
        let label: ExampleLabel = e.action.isPositive ? .positive : .negative
        var ex = TrainingExample(label: label, userId: e.userId, itemId: e.itemId, action: e.action,
                                 dwellMs: e.dwellMs, requestId: e.requestId, eventTs: e.ts)
        if var p = pending[key] {
            ex.position = p.position
            ex.requestId = ex.requestId ?? p.requestId
            ex.impressionTs = p.impressionTs
            ex.features = p.features
            if e.ts > p.impressionTs &+ windowMs {
                // Outside the window: the impression will still close as a negative.
                ex.late = e.action.isPositive
            } else {
                p.engaged = true
                pending[key] = p
            }
        } else if let c = closed[key] {
            ex.position = c.position
            ex.requestId = ex.requestId ?? c.requestId
            ex.impressionTs = c.impressionTs
            ex.features = c.features
            ex.late = e.action.isPositive
        }
        if ex.late { latePositives += 1 }
        if label == .positive { positivesEmitted += 1 } else { negativesEmitted += 1 }
        return ex
    }

    /// Advances event time: closes every window with `impressionTs + window <= watermark`,
    /// returning a negative example for each impressed item that got no engagement,
    /// and expires tombstones older than `lateTTL`.
    public func advance(watermark newWatermark: Int64) -> [TrainingExample] {
        guard newWatermark > watermark else { return [] }
        watermark = newWatermark
        var out: [TrainingExample] = []
        while let d = closeHeap.peekDeadline, d <= newWatermark {
            let e = closeHeap.pop()!
            guard let p = pending[e.payload], p.seq == e.seq else { continue }
            pending.removeValue(forKey: e.payload)
            if !p.engaged {
                out.append(TrainingExample(label: .negative, userId: e.payload.userId, itemId: e.payload.itemId,
                                           action: nil, position: p.position, requestId: p.requestId,
                                           impressionTs: p.impressionTs, eventTs: e.deadline,
                                           features: p.features))
                negativesEmitted += 1
            }
            if lateTTLMs > 0 {
                closed[e.payload] = Closed(requestId: p.requestId, position: p.position,
                                           impressionTs: p.impressionTs, features: p.features, seq: p.seq)
                expiryHeap.push(.init(deadline: e.deadline &+ lateTTLMs, seq: p.seq, payload: e.payload))
            }
        }
        while let d = expiryHeap.peekDeadline, d <= newWatermark {
            let e = expiryHeap.pop()!
            if let c = closed[e.payload], c.seq == e.seq { closed.removeValue(forKey: e.payload) }
        }
        return out
    }
}
