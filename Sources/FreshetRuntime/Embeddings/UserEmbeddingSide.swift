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
/// Owned by the processing thread.
package final class UserEmbeddingSide {
    /// Items of the history (`embeddings.history`).
    let historyLength: Int
    /// Users with a positive since the last publication, in first-touch order.
    private var touched: [String] = []
    private var touchedSet = Set<ExactId>()
    private var publishedVersion: Int64 = 0
    /// Interned item number (the store's) -> row of its vector in the set of
    /// version `rowsVersion` (-1: no vector). Built once a refresh, so a user
    /// vector costs `history` array reads, not `history` dictionary lookups.
    private var rowOfNumber: [Int32] = []
    private var rowsVersion: Int64 = -1
    private var mean: [Float] = []

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

    /// Marks a user for republication at the next sync (after a positive).
    func touch(user: String) {
        if touchedSet.insert(ExactId(user)).inserted { touched.append(user) }
    }

    /// Users waiting for the next sync or being written.
    var pendingUsers: Int { touched.count + draining.count - drainCursor }

    /// Position of the next user of a full republication in progress (nil: none).
    private var republishCursor: Int?

    /// Touched users taken at a sync and being written, `republishSlice` a
    /// call from `drainCursor` on (users touched meanwhile wait for the next sync).
    private var draining: [String] = []
    private var drainCursor = 0

    /// True while a full republication (after a new refresh) or the writing
    /// of a sync's touched users is not finished: the processor keeps calling
    /// `takePublication` at every flush until it is.
    var republishing: Bool { republishCursor != nil || drainCursor < draining.count }

    /// Users written per call, of the touched ones and of a full republication
    /// each: bounds the memory of one flush's Redis batch (~0.35 KiB a user,
    /// and hiredis copies the command once more; a sync of 3 M events' run
    /// touched ~100 k users) and spreads the writes over a few flushes.
    static let republishSlice = 16_384

    /// Calls `emit(user, vector)` for what to write against `set`: the users
    /// touched before the call that started the current drain and, after a
    /// new refresh, every user, each in slices of `republishSlice` a call
    /// (see `republishing`). Users none of
    /// whose recent items has a vector are left out (and retried after the
    /// next refresh). `vector` is valid during the call only.
    func takePublication(_ set: ItemVectorSet, store: UserFeatureStore, _ emit: (String, UnsafeBufferPointer<Float>) -> Void) {
        guard set.version > 0 else { return }
        mapRows(set, store: store)
        if set.version > publishedVersion {
            publishedVersion = set.version
            republishCursor = 0
            // The republication writes every user, each with the history it
            // has when its slice is written: the touched ones (waiting or
            // being drained) would only be written twice. Users touched from
            // now on are kept (their slice may already have passed).
            touched.removeAll(keepingCapacity: true)
            touchedSet.removeAll(keepingCapacity: true)
            draining.removeAll(keepingCapacity: true)
            drainCursor = 0
        }
        if drainCursor >= draining.count {
            swap(&draining, &touched)
            touched.removeAll(keepingCapacity: true)
            touchedSet.removeAll(keepingCapacity: true)
            drainCursor = 0
        }
        let end = min(draining.count, drainCursor + Self.republishSlice)
        for user in draining[drainCursor..<end] {
            store.withRecentNumbers(of: user, limit: historyLength) { numbers in
                meanVector(numbers, set, store) { emit(user, $0) }
            }
        }
        drainCursor = end
        if drainCursor >= draining.count {
            draining.removeAll(keepingCapacity: true)
            drainCursor = 0
        }
        if let start = republishCursor {
            let next = store.forEachUserRecentNumbers(from: start, count: Self.republishSlice, limit: historyLength) { user, numbers in
                meanVector(numbers, set, store) { emit(user, $0) }
            }
            republishCursor = next >= store.userCount ? nil : next
        }
    }

    /// Resolves interned numbers to rows of `set` (rebuilt per version, extended as the store interns new items).
    private func mapRows(_ set: ItemVectorSet, store: UserFeatureStore) {
        if rowsVersion != set.version {
            rowsVersion = set.version
            rowOfNumber.removeAll(keepingCapacity: true)
        }
        let n = store.internedItemCount
        guard rowOfNumber.count < n else { return }
        rowOfNumber.reserveCapacity(n)
        for k in rowOfNumber.count..<n {
            rowOfNumber.append(set.rowOf[ByteId(store.internedItem(UInt32(k)))].map { Int32($0) } ?? -1)
        }
    }

    /// The mean of the vectors of `numbers` that have one, in the order given
    /// and scaled by 1/n as `ItemVectorSet.meanVector` does (bit-identical).
    private func meanVector(_ numbers: UnsafeBufferPointer<UInt32>, _ set: ItemVectorSet, _ store: UserFeatureStore,
                            _ body: (UnsafeBufferPointer<Float>) -> Void) {
        let d = set.dimension
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
