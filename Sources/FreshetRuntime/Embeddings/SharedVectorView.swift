import FreshetCore
import Synchronization

/// What one side publishes for the other in the same process: the latest
/// embedding vectors (users for item tasks, items for user tasks) and users'
/// interaction counts (for the examples' serving features).
///
/// Each parameter has one writer (the owner of the user's partition); item
/// tasks, which train the item side of an example, read the user's vector
/// from here. The value is at most one flush old when the owner runs in this
/// instance. When the owner runs elsewhere the entry is missing and the reader
/// falls back to the row's deterministic initial vector (documented as the
/// cross-instance staleness in docs/EMBEDDINGS.md).
public final class SharedVectorView: Sendable {
    struct Entry {
        var vector: [Float]?
        var interactionCount: Int64?
    }
    private let entries = Mutex<IdMap<Entry>>([:])

    public init() {}

    public func publish(vectors: [(String, [Float])]) {
        guard !vectors.isEmpty else { return }
        entries.withLock { map in
            for (id, vector) in vectors { map[id, default: Entry()].vector = vector }
        }
    }

    public func publish(counts: [(String, Int64)]) {
        guard !counts.isEmpty else { return }
        entries.withLock { map in
            for (id, count) in counts { map[id, default: Entry()].interactionCount = count }
        }
    }

    public func vector(_ userId: String) -> [Float]? {
        entries.withLock { $0[userId]?.vector }
    }

    public func interactionCount(_ userId: String) -> Int64? {
        entries.withLock { $0[userId]?.interactionCount }
    }

    public func remove(_ userIds: [String]) {
        entries.withLock { map in for id in userIds { map[id]?.vector = nil } }
    }
}
