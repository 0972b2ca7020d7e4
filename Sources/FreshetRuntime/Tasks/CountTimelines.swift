import FreshetCore
import HeapModule

/// The keyed state of a counts task: per user, the latest `interaction_count`
/// and the event times of the recent positives behind it (a short timeline,
/// enough to answer "the count as of event time t" for every t the task can
/// still be asked about), plus the records held until the task's watermark
/// passes them, in one event-time queue.
///
/// Every record is placed in event time at the time it is *known from*: its
/// ts, or, for a late event (read at or behind its source partition's
/// watermark), just past that watermark (`BoundedOutOfOrdernessWatermark.knownAt`).
/// count(u, t) = total(u) − #{recent positives of u known after t}: the
/// number of u's positives known by t, as long as every positive known after
/// t is still kept. Positives are kept while known > watermark − `retentionMs`
/// (and after the user's oldest held record, from its arrival on), so the
/// answer is exact for every record held that was known within
/// `retentionMs` of its time (`CountTask` gives later ones no count). Known-from times make it a function of each source
/// partition's log: a positive known by t always arrives before the
/// watermark passes t, whatever the interleaving (docs/EMBEDDINGS.md, "Late events").
///
/// Checkpointed by user: one entry holds the user's total, timeline and held
/// records. Processing thread only.
final class CountTimelines {
    /// A record waiting for the watermark.
    struct Held: Equatable {
        enum Payload: Equatable {
            /// The shown items received so far, each with its features as of the impression.
            case impression(items: [ImpressionFeaturesPart.Item])
            case interaction(itemId: String, action: Action, dwellMs: Int64?)
        }
        var ts: EventTimeMs
        /// When it is known (≥ ts; > ts for a late event): it is released, and
        /// a positive counts, from this event time on.
        var knownAt: EventTimeMs
        /// Ties' order: where an interaction arrived in the task's input
        /// (offset, index in the bundle); an impression's source offset and partition.
        var arrival: DuplicateFilter.Position
        var requestId: String?
        var payload: Payload

        /// `knownAt` when the record is late (known after its ts), else nil:
        /// what the joiner is told (`ImpressionJoiner`'s `knownAt`).
        var lateKnownAt: EventTimeMs? { knownAt > ts ? knownAt : nil }

        /// Impressions before interactions at the same time (an engagement
        /// follows its impression), then order of arrival.
        var rank: UInt8 {
            if case .impression = payload { return 0 }
            return 1
        }
    }

    struct User {
        var total: Int64 = 0
        /// Known-from times of recent positives, ascending.
        var recent: [EventTimeMs] = []
        var held: [Held] = []
    }

    /// Orders held records across users: (known-from time, rank, arrival).
    struct QueueKey: Comparable {
        var knownAt: EventTimeMs
        var rank: UInt8
        var arrival: DuplicateFilter.Position
        var user: UInt32

        static func < (a: QueueKey, b: QueueKey) -> Bool {
            if a.knownAt != b.knownAt { return a.knownAt < b.knownAt }
            if a.rank != b.rank { return a.rank < b.rank }
            return a.arrival < b.arrival
        }
    }

    let retentionMs: Int64
    // Owned by one counts task's processing thread, never touched
    // concurrently or reentrantly: no dynamic exclusivity checks
    // (swift_beginAccess and its access set were ~8% of the counts stage,
    // `bench tasks --only 2`).
    @exclusivity(unchecked) private(set) var users: [User] = []
    /// User id → slot in `users`: ids compare by their bytes (`IdBytes`), as
    /// every map of ids does (a `Dictionary<String, _>` took canonically
    /// equivalent ids for one user, and its SipHash was ~10% of the stage).
    @exclusivity(unchecked) private var ids = StringInterner()
    @exclusivity(unchecked) private var queue = Heap<QueueKey>()
    /// Users changed since the last checkpoint (`changedFlags` marks membership).
    @exclusivity(unchecked) private var changed: [UInt32] = []
    @exclusivity(unchecked) private var changedFlags: [Bool] = []
    /// Largest number of held records so far (reported in gauges and the bench).
    @exclusivity(unchecked) private(set) var peakHeld = 0

    init(retentionMs: Int64) {
        self.retentionMs = retentionMs
    }

    var userCount: Int { users.count }
    var heldCount: Int { queue.count }

    private func slot(_ userId: String) -> UInt32 {
        let s = ids.intern(userId)
        if Int(s) == users.count {
            users.append(User())
            changedFlags.append(false)
        }
        return s
    }

    private func touch(_ s: UInt32) {
        if !changedFlags[Int(s)] {
            changedFlags[Int(s)] = true
            changed.append(s)
        }
    }

    /// A positive of `userId` known from `ts` (its known-from time);
    /// `countAfter` is the user's `interaction_count` after it, as its owner counted it.
    func recordPositive(userId: String, ts: EventTimeMs, countAfter: Int64, watermark: EventTimeMs?) {
        let s = slot(userId)
        var user = users[Int(s)]
        user.total = max(user.total, countAfter)
        if watermark.map({ ts > $0 &- retentionMs }) ?? true {
            let at = user.recent.partitioningIndex { $0 > ts }
            user.recent.insert(ts, at: at)
        }
        prune(&user, watermark: watermark)
        users[Int(s)] = user
        touch(s)
    }

    /// The user's count as of event time `ts`: positives known by `ts`.
    func count(userId: String, asOf ts: EventTimeMs) -> Int64 {
        guard let s = ids.index(of: userId) else { return 0 }
        let user = users[Int(s)]
        let after = user.recent.count - user.recent.partitioningIndex { $0 > ts }
        return user.total - Int64(after)
    }

    /// Holds a record until the watermark passes `record.knownAt`.
    func hold(userId: String, _ record: Held) {
        let s = slot(userId)
        users[Int(s)].held.append(record)
        queue.insert(QueueKey(knownAt: record.knownAt, rank: record.rank, arrival: record.arrival, user: s))
        peakHeld = max(peakHeld, queue.count)
        touch(s)
    }

    /// Adds an impression's part to the held impression it belongs to (same
    /// user, source position and known-from time); an item it holds already
    /// (a part sent twice) is not added again. False when no impression of
    /// it is held.
    func merge(userId: String, _ part: Held) -> Bool {
        guard case .impression(let items) = part.payload, let s = ids.index(of: userId),
              let k = users[Int(s)].held.firstIndex(where: { $0.rank == 0 && $0.arrival == part.arrival && $0.knownAt == part.knownAt })
        else { return false }
        guard case .impression(var held) = users[Int(s)].held[k].payload else { return false }
        for item in items where !held.contains(where: { $0.index == item.index }) { held.append(item) }
        users[Int(s)].held[k].payload = .impression(items: held)
        touch(s)
        return true
    }

    /// Takes the held records known by `watermark` (all when nil), in
    /// (known-from time, rank, arrival) order, each with its user id.
    func takeDue(upTo watermark: EventTimeMs?, _ body: (String, Held) -> Void) {
        while let next = queue.min, watermark.map({ next.knownAt <= $0 }) ?? true {
            _ = queue.popMin()
            let s = Int(next.user)
            guard let index = users[s].held.firstIndex(where: {
                $0.arrival == next.arrival && $0.knownAt == next.knownAt && $0.rank == next.rank
            }) else { continue }
            let record = users[s].held.remove(at: index)
            touch(next.user)
            body(ids[next.user], record)
            prune(&users[s], watermark: watermark)
        }
    }

    /// Drops timeline entries no held or late record can ask about any more:
    /// those at or before both `watermark − retentionMs` and the user's
    /// oldest held record (which needs every positive after its time).
    private func prune(_ user: inout User, watermark: EventTimeMs?) {
        guard let watermark, let first = user.recent.first else { return }
        var limit = watermark &- retentionMs
        for h in user.held where h.ts < limit { limit = h.ts }
        guard first <= limit else { return }
        let drop = user.recent.partitioningIndex { $0 > limit }
        user.recent.removeFirst(drop)
    }

    // MARK: - Checkpoint

    /// 3: held impressions are their items with features (from the item
    /// tasks); 2 (read): held records carry their known-from time; 1 (read):
    /// every one on time. A held impression of version 1 or 2 (its items'
    /// ids only, sent by its source task before the item tasks sent
    /// impressions here) has no features: `restoreEntry` refuses the entry.
    static let entryVersion: UInt8 = 3

    /// Takes (and clears) the users changed since the last call.
    func takeChangedForCheckpoint() -> [UInt32] {
        for s in changed { changedFlags[Int(s)] = false }
        defer { changed.removeAll(keepingCapacity: true) }
        return changed
    }

    /// Encodes a user's entry: version, total, the timeline, then the held
    /// records (kind, ts, known-from − ts, arrival, request id, payload).
    /// Returns the user id.
    func appendCheckpointEntry(_ s: UInt32, into w: inout ByteWriter) -> String {
        let user = users[Int(s)]
        w.write(byte: Self.entryVersion)
        w.write(zigzag: user.total)
        w.write(varint: UInt64(user.recent.count))
        for ts in user.recent { w.write(zigzag: ts) }
        w.write(varint: UInt64(user.held.count))
        for h in user.held {
            w.write(byte: h.rank)
            w.write(zigzag: h.ts)
            w.write(zigzag: h.knownAt &- h.ts)
            w.write(zigzag: h.arrival.offset)
            w.write(varint: UInt64(h.arrival.subIndex))
            w.write(optionalString: h.requestId)
            switch h.payload {
            case .impression(let items):
                ImpressionFeaturesPart.Item.encode(items, into: &w)
            case .interaction(let itemId, let action, let dwellMs):
                w.write(string: itemId)
                w.write(byte: action.rawValue)
                w.write(optionalZigzag: dwellMs)
            }
        }
        return ids[s]
    }

    /// Loads one user's checkpointed entry (and queues its held records).
    /// - Throws: `CodecError` for a corrupt or unknown entry.
    func restoreEntry(userId: String, bytes: [UInt8]) throws(CodecError) {
        var r = ByteReader(bytes)
        let version = try r.readByte("counts entry version")
        guard (1...Self.entryVersion).contains(version) else {
            throw CodecError(.unknownVersion, "counts entry version \(version)")
        }
        let s = slot(userId)
        var user = User()
        user.total = try r.readZigzag("counts entry total")
        let n = try r.readVarint("counts entry timeline")
        guard n <= UInt64(bytes.count) else { throw CodecError(.invalidValue, "counts entry timeline \(n)") }
        for _ in 0..<n { user.recent.append(try r.readZigzag("counts entry ts")) }
        let heldCount = try r.readVarint("counts entry held")
        guard heldCount <= UInt64(bytes.count) else { throw CodecError(.invalidValue, "counts entry held \(heldCount)") }
        for _ in 0..<heldCount {
            let rank = try r.readByte("counts held kind")
            let ts = try r.readZigzag("counts held ts")
            let knownAt = version == 1 ? ts : ts &+ (try r.readZigzag("counts held known_at"))
            let offset = try r.readZigzag("counts held offset")
            guard let index = UInt32(exactly: try r.readVarint("counts held index")) else {
                throw CodecError(.invalidValue, "counts held index")
            }
            let requestId = try r.readOptionalString("counts held request id")
            let payload: Held.Payload
            switch rank {
            case 0 where version < 3:
                // Its items' ids only (see `entryVersion`): its features are
                // in the earlier release's item tasks, which this one cannot
                // read, so taking the entry over would lose its examples.
                throw CodecError(.unknownVersion, TaskCheckpoint.retiredJoinStateMessage(
                    "counts entry version \(version) of user \(userId) holds an impression waiting for the join"))
            case 0:
                let count = try r.readVarint("counts held items")
                guard count <= UInt64(bytes.count) else { throw CodecError(.invalidValue, "counts held items \(count)") }
                var items: [ImpressionFeaturesPart.Item] = []
                for _ in 0..<count {
                    guard let index = UInt32(exactly: try r.readVarint("counts held item index")) else {
                        throw CodecError(.invalidValue, "counts held item index")
                    }
                    let itemId = try r.readString("counts held item")
                    let position = try r.readOptionalZigzag("counts held position").map { Int32(truncatingIfNeeded: $0) }
                    items.append(ImpressionFeaturesPart.Item(index: index, itemId: itemId, position: position,
                                                             popularity7d: try r.readZigzag("counts held popularity"),
                                                             impressions7d: try r.readZigzag("counts held impressions")))
                }
                payload = .impression(items: items)
            case 1:
                let itemId = try r.readString("counts held item id")
                let raw = try r.readByte("counts held action")
                guard let action = Action(rawValue: raw) else { throw CodecError(.invalidValue, "counts held action \(raw)") }
                payload = .interaction(itemId: itemId, action: action, dwellMs: try r.readOptionalZigzag("counts held dwell"))
            default:
                throw CodecError(.invalidTag, "counts held kind \(rank)")
            }
            let held = Held(ts: ts, knownAt: knownAt, arrival: DuplicateFilter.Position(offset: offset, subIndex: index),
                            requestId: requestId, payload: payload)
            user.held.append(held)
            queue.insert(QueueKey(knownAt: knownAt, rank: rank, arrival: held.arrival, user: s))
        }
        try r.expectEnd("counts entry")
        users[Int(s)] = user
        peakHeld = max(peakHeld, queue.count)
    }
}
