import FreshetCore
import FreshetEmbeddings
import FreshetFeatures

/// The user-keyed half of the embeddings, inside the task that owns the
/// user's features (an `interactions` task keyed by user).
///
/// A user's embedding history is the head (`history`, 10) of their
/// `recent_items_50` in the task's `UserFeatureStore`: the list serving reads,
/// ordered by event time. So the side keeps no per-user state and writes no
/// checkpoint of its own (the store's checkpoint restores the history), and a
/// user vector is exactly what a reader computes from `recent_items_50` and
/// the items' published vectors. The side attaches the history to every
/// positive it routes to the item stage (what the items' owners count
/// co-occurrences with), and publishes user vectors as the mean of those
/// items' vectors in the latest refresh: the session vector and the
/// cold-start rule. A user is republished after each of their positives and
/// every user after a new refresh, so users are always scored in the basis of
/// the item vectors published with them (`embedding_version` on both).
/// A user whose vector would be written unchanged (same refresh, same
/// items with a vector in the same order: bit-identical) is left out, so
/// only changed rows reach Redis. Users are tracked by their slot in the
/// store (dense, stable while the store lives), never by id `String`.
/// Owned by the processing thread.
package final class UserEmbeddingSide {
    /// Items of the history (`embeddings.history`).
    let historyLength: Int
    /// Slots of users with a positive since the last publication, in
    /// first-touch order; `isTouched[slot]` marks the ones listed.
    private var touched: [UInt32] = []
    private var isTouched: [Bool] = []
    /// Per user slot, the signature of the vector last written (0: none):
    /// the refresh version and the set's rows the mean was made of, in
    /// order. Equal signatures mean a bit-identical vector (the mean is a
    /// function of the rows in order), so the write is skipped.
    private var writtenSignature: [UInt64] = []
    private var publishedVersion: Int64 = 0
    /// The store's interned item numbers mapped to rows of the published
    /// set: a user vector costs `history` array reads, not `history` dictionary lookups.
    private var setRows = SetRowsOfNumbers()
    private var mean: [Float] = []
    /// Vectors written, and vectors left out because they were unchanged (since start).
    package private(set) var vectorsWritten = 0
    package private(set) var unchangedSkipped = 0

    package init(settings: Topology.Embeddings) {
        historyLength = settings.history
    }

    /// The history a positive co-occurs with: the user's recent items before
    /// it, newest first. Call before the store applies the interaction.
    func historyBefore(user: String, store: UserFeatureStore) -> [String] {
        store.recentItemIds(of: user, limit: historyLength)
    }

    /// `historyBefore` encoded as the routed record's history extension
    /// (`ItemEvent.userHistoryEncoded`), with no `String` per item.
    func encodedHistoryBefore(user: String, store: UserFeatureStore) -> [UInt8] {
        store.encodedRecentItems(of: user, limit: historyLength)
    }

    /// The same for the user in `slot`, into `out` (its storage reused): the
    /// processor's path, where the slot was found from the record's bytes
    /// and is reused for `touch(slot:)`.
    func encodeHistoryBefore(slot: UInt32, store: UserFeatureStore, into out: inout ByteWriter) {
        store.encodeRecentItems(slot: slot, limit: historyLength, into: &out)
    }

    /// Marks the user in `slot` for republication at the next sync (after a positive).
    func touch(slot: UInt32) {
        let s = Int(slot)
        if s >= isTouched.count { isTouched.append(contentsOf: repeatElement(false, count: s + 1 - isTouched.count)) }
        guard !isTouched[s] else { return }
        isTouched[s] = true
        touched.append(slot)
    }

    /// `touch(slot:)` by id (tests); a user with no state is ignored.
    func touch(user: String, store: UserFeatureStore) {
        if let slot = store.userSlot(user) { touch(slot: slot) }
    }

    /// Users waiting for the next sync or being written.
    var pendingUsers: Int { touched.count + draining.count - drainCursor }

    /// Position of the next user of a full republication in progress (nil: none).
    private var republishCursor: Int?

    /// Touched users taken at a sync and being written, `republishSlice` a
    /// call from `drainCursor` on (users touched meanwhile wait for the next sync).
    private var draining: [UInt32] = []
    private var drainCursor = 0

    /// True while a full republication (after a new refresh) or the writing
    /// of a sync's touched users is not finished: the processor keeps calling
    /// `takePublication` at every flush until it is.
    var republishing: Bool { republishCursor != nil || drainCursor < draining.count || !rewriteDue.isEmpty }

    /// Users whose vector the next publication writes again although it did
    /// not change: Redis refused their key (`RefusedEntity`).
    private var rewriteDue: [UInt32] = []

    /// Writes the user's vector again at the next publication (which the
    /// engine makes at the next flush: `republishing`); the features are
    /// marked in the store.
    func rewrite(slot: UInt32) { rewriteDue.append(slot) }

    /// Users written per call, of the touched ones and of a full republication
    /// each: bounds the memory of one flush's Redis batch (~0.35 KiB a user,
    /// held three times while the writer sends it: the command, its pipeline
    /// copy, hiredis's buffer; a sync of 3 M events' run touched ~100 k users)
    /// and spreads the writes over flushes (a flush runs every few ms).
    /// 4,096 (1.4 MiB a task a flush): at 16,384 the four tasks' slices made
    /// 22 MiB batches, and the end of a bounded run's republication held
    /// ~100 MiB of them (page-fault profile of the 1 M-event benchmark).
    static let republishSlice = 4_096

    /// Calls `emit(user, vector)` for what to write against `set`: the users
    /// touched before the call that started the current drain and, after a
    /// new refresh, every user, each in slices of `republishSlice` a call
    /// (see `republishing`). Users whose vector is bit-identical to the one
    /// last written (same refresh, same rows in the same order) are left
    /// out. A user none of whose first items has a vector in `set` has none:
    /// `removed(user)` once (the vector written before, by this process or
    /// an earlier one, must go), then nothing until it has one again.
    /// `vector` is valid during the call only.
    func takePublication(_ set: ItemVectorSet, store: UserFeatureStore, removed: (String) -> Void = { _ in },
                         _ emit: (String, UnsafeBufferPointer<Float>) -> Void) {
        // No refresh yet: no user has a vector to write again (the first one writes every user).
        guard set.version > 0 else { rewriteDue.removeAll(); return }
        setRows.update(set, numbering: store, interned: store.internedItemCount) { ByteId(store.internedItem($0)) }
        if writtenSignature.count < store.userCount {
            writtenSignature.append(contentsOf: repeatElement(0, count: store.userCount - writtenSignature.count))
        }
        if set.version > publishedVersion {
            publishedVersion = set.version
            republishCursor = 0
            // The republication writes every user, each with the history it
            // has when its slice is written: the touched ones (waiting or
            // being drained) would only be written twice. Users touched from
            // now on are kept (their slice may already have passed).
            clearTouched()
            draining.removeAll(keepingCapacity: true)
            drainCursor = 0
        }
        for slot in rewriteDue {
            // Forget what was written, so `publish` does not leave it out as unchanged.
            if Int(slot) < writtenSignature.count { writtenSignature[Int(slot)] = 0 }
            store.withRecentNumbers(slot: slot, limit: historyLength) { numbers in
                publish(slot, numbers, set, store, removed, emit)
            }
        }
        rewriteDue.removeAll()
        if drainCursor >= draining.count {
            swap(&draining, &touched)
            for slot in draining { isTouched[Int(slot)] = false }
            touched.removeAll(keepingCapacity: true)
            drainCursor = 0
        }
        let end = min(draining.count, drainCursor + Self.republishSlice)
        for slot in draining[drainCursor..<end] {
            store.withRecentNumbers(slot: slot, limit: historyLength) { numbers in
                publish(slot, numbers, set, store, removed, emit)
            }
        }
        drainCursor = end
        if drainCursor >= draining.count {
            draining.removeAll(keepingCapacity: true)
            drainCursor = 0
        }
        if let start = republishCursor {
            let next = store.forEachSlotRecentNumbers(from: start, count: Self.republishSlice, limit: historyLength) { slot, numbers in
                publish(slot, numbers, set, store, removed, emit)
            }
            republishCursor = next >= store.userCount ? nil : next
        }
    }

    private func clearTouched() {
        for slot in touched { isTouched[Int(slot)] = false }
        touched.removeAll(keepingCapacity: true)
    }

    /// `writtenSignature` of a user known to have no vector (its removal
    /// was emitted); `signature` never returns it.
    static let noVector = UInt64.max

    /// Emits the user's vector unless it is the one last written; a user
    /// with no vector is removed once.
    private func publish(_ slot: UInt32, _ numbers: UnsafeBufferPointer<UInt32>, _ set: ItemVectorSet,
                         _ store: UserFeatureStore, _ removed: (String) -> Void,
                         _ emit: (String, UnsafeBufferPointer<Float>) -> Void) {
        let s = Int(slot)
        let signature = Self.signature(numbers, setRows.rows, version: set.version)
        guard signature != 0 else {
            // None of the first items has a refresh vector (they are new
            // items, folded in, or expired): a vector written before would
            // be stale, in another basis or of other items.
            if s < writtenSignature.count, writtenSignature[s] != Self.noVector {
                writtenSignature[s] = Self.noVector
                removed(store.userId(slot: slot))
            }
            return
        }
        if s < writtenSignature.count {
            guard writtenSignature[s] != signature else {
                unchangedSkipped += 1
                return
            }
            writtenSignature[s] = signature
        }
        meanVector(numbers, set) {
            vectorsWritten += 1
            emit(store.userId(slot: slot), $0)
        }
    }

    /// A 64-bit signature of (version, the rows of `numbers` that have a
    /// vector, in order); 0 when none has one. Order-dependent, like the mean's
    /// float sums: equal signatures mean bit-identical means (up to a 64-bit
    /// hash collision, ~2^-64 a comparison).
    static func signature(_ numbers: UnsafeBufferPointer<UInt32>, _ rowOfNumber: [Int32], version: Int64) -> UInt64 {
        var h = mix(UInt64(bitPattern: version))
        var n = 0
        for number in numbers {
            let k = Int(number)
            guard k < rowOfNumber.count, rowOfNumber[k] >= 0 else { continue }
            h = mix(h ^ UInt64(UInt32(bitPattern: rowOfNumber[k])))
            n += 1
        }
        guard n > 0 else { return 0 }
        return h == 0 ? 1 : (h == noVector ? 2 : h)
    }

    /// SplitMix64's finaliser.
    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The mean of the vectors of `numbers` that have one, in the order given
    /// and scaled by 1/n as `ItemVectorSet.meanVector` does (bit-identical).
    private func meanVector(_ numbers: UnsafeBufferPointer<UInt32>, _ set: ItemVectorSet,
                            _ body: (UnsafeBufferPointer<Float>) -> Void) {
        let d = set.dimension
        let rowOfNumber = setRows.rows
        if mean.count != d { mean = [Float](repeating: 0, count: d) }
        var n = 0
        mean.withUnsafeMutableBufferPointer { sum in
            for c in 0..<d { sum[c] = 0 }
            set.vectors.withUnsafeBufferPointer { vectors in
                for number in numbers {
                    let k = Int(number)
                    guard k < rowOfNumber.count, rowOfNumber[k] >= 0 else { continue }
                    let base = Int(rowOfNumber[k]) * d
                    for c in 0..<d { sum[c] += vectors[base + c] }
                    n += 1
                }
            }
            guard n > 0 else { return }
            let inv = 1 / Float(n)
            for c in 0..<d { sum[c] *= inv }
        }
        guard n > 0 else { return }
        mean.withUnsafeBufferPointer { body($0) }
    }
}
