/// Settings of the streaming co-occurrence model (docs/EMBEDDINGS.md).
package struct CooccurrenceConfig: Sendable, Equatable {
    /// Published vector length (the `embedding_<dimension>d` field).
    package var dimension: Int = 64
    /// A row that grows past this many entries is pruned ...
    package var rowCapacity: Int = 200
    /// ... to its this many largest counts (ties: smaller neighbour id first).
    package var rowKeep: Int = 100
    /// How many of the user's most recent positive items each positive co-occurs with.
    package var history: Int = 10
    /// Positive interactions an item needs before it gets a row (frequency filter).
    package var admitAfter: Int = 1
    /// Rows with no positive for this much event time are evicted (0: never).
    /// Default 365 days: a slow catalogue's long tail stays retrievable.
    package var ttlMs: Int64 = 365 * 24 * 3_600_000
    /// Subspace iterations per refresh when warm-started from the previous basis.
    package var warmIterations: Int = 2
    /// Subspace iterations of the first refresh (random start).
    package var coldIterations: Int = 8
    /// Seed of the random start basis (a function of (seed, item id)).
    package var seed: UInt64 = 42

    package init(dimension: Int = 64) { self.dimension = dimension }
}
