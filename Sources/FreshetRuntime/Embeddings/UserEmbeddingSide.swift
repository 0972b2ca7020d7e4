import FreshetCore
import FreshetEmbeddings

/// The user-keyed half of the embeddings, inside the task that owns the
/// user's features (an `interactions` task keyed by user).
///
/// It keeps each user's most recent positive items (`UserHistory`), attaches
/// them to the positives it routes to the item stage (what the items' owners
/// count co-occurrences with), and publishes user vectors as the mean of the
/// recent items' vectors in the latest refresh: the session vector serving
/// computes, and the cold-start rule. A user is republished after each of
/// their positives and for every user after a new refresh, so users are
/// always scored in the basis of the item vectors published with them
/// (`embedding_version` on both). Owned by the processing thread.
public final class UserEmbeddingSide {
    public private(set) var history: UserHistory
    private var touched: Set<ByteId> = []
    private var publishedVersion: Int64 = 0
    /// Users whose history changed since the last checkpoint.
    var changedForCheckpoint: Set<ByteId> = []

    public init(settings: Topology.Embeddings) {
        history = UserHistory(capacity: settings.history)
    }

    /// Records a positive; returns the user's history before it (newest first).
    func recordPositive(user: String, item: String) -> [String] {
        let u = ByteId(user)
        let before = history.record(user: u, item: ByteId(item))
        touched.insert(u)
        changedForCheckpoint.insert(u)
        return before.map(\.string)
    }

    /// (user, vector) to write against `set`: every user after a new refresh,
    /// else the users touched since the last call. Users none of whose recent
    /// items has a vector yet are left out (and retried after the next refresh).
    func takePublication(_ set: ItemVectorSet) -> [(ByteId, [Float])] {
        guard set.version > 0 else { return [] }
        var out: [(ByteId, [Float])] = []
        if set.version > publishedVersion {
            publishedVersion = set.version
            for user in history.users {
                if let v = set.meanVector(history.items(of: user)) { out.append((user, v)) }
            }
        } else {
            for user in touched {
                if let v = set.meanVector(history.items(of: user)) { out.append((user, v)) }
            }
        }
        touched.removeAll(keepingCapacity: true)
        return out
    }

    /// Checkpoint form of a user's history: count varint, then length-prefixed ids.
    func encodeHistory(_ user: ByteId) -> [UInt8] {
        var out: [UInt8] = []
        func varint(_ v: Int) { var v = UInt64(v); while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }; out.append(UInt8(v)) }
        let items = history.items(of: user)
        varint(items.count)
        for item in items { varint(item.bytes.count); out.append(contentsOf: item.bytes) }
        return out
    }

    /// Inverse of `encodeHistory`.
    func restoreHistory(user: [UInt8], from bytes: [UInt8]) throws(CodecError) {
        var i = 0
        func varint() throws(CodecError) -> Int {
            var v = 0, shift = 0
            while true {
                guard i < bytes.count, shift < 63 else { throw CodecError(.truncated, "user history truncated") }
                let b = bytes[i]; i += 1
                v |= Int(b & 0x7f) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }
        let n = try varint()
        var items: [ByteId] = []
        for _ in 0..<n {
            let len = try varint()
            guard len <= bytes.count - i else { throw CodecError(.truncated, "user history item truncated") }
            items.append(ByteId(bytes: Array(bytes[i..<(i + len)])))
            i += len
        }
        history.restore(user: ByteId(bytes: user), items: items)
    }
}
