import FreshetEmbeddings
import Synchronization

extension Topology.Embeddings {
    /// The co-occurrence model's settings (every instance must use the same ones:
    /// the refresh's start basis is a function of (seed, id)).
    var cooccurrenceConfig: CooccurrenceConfig {
        var config = CooccurrenceConfig(dimension: dimension)
        config.history = history
        config.admitAfter = itemAdmitAfter
        config.ttlMs = ttlMs
        config.seed = seed
        return config
    }
}

/// Users' interaction counts as last flushed by their owners in this process:
/// the `interaction_count` serving feature recorded with an impression in the
/// examples (-1 when the user's owner runs in another instance).
package final class InteractionCountView: Sendable {
    private let counts = Mutex<[ByteId: Int64]>([:])

    package init() {}

    package func publish(_ values: [(String, Int64)]) {
        guard !values.isEmpty else { return }
        counts.withLock { map in for (id, count) in values { map[ByteId(id)] = count } }
    }

    package func interactionCount(_ userId: String) -> Int64? {
        counts.withLock { $0[ByteId(userId)] }
    }
}
