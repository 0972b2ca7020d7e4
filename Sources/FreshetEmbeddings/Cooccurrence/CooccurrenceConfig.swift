/// Settings of the streaming co-occurrence model (docs/EMBEDDINGS.md).
public struct CooccurrenceConfig: Sendable, Equatable {
    /// Published vector length (the `embedding_<dimension>d` field).
    public var dimension: Int = 64
    /// A row that grows past this many entries is pruned ...
    public var rowCapacity: Int = 200
    /// ... to its this many largest counts (ties: smaller neighbour id first).
    public var rowKeep: Int = 100
    /// How many of the user's most recent positive items each positive co-occurs with.
    public var history: Int = 10
    /// Positive interactions an item needs before it gets a row (frequency filter).
    public var admitAfter: Int = 1
    /// Rows with no positive for this much event time are evicted (0: never).
    /// Default 365 days: a slow catalogue's long tail stays retrievable.
    public var ttlMs: Int64 = 365 * 24 * 3_600_000
    /// Subspace iterations per refresh when warm-started from the previous basis.
    public var warmIterations: Int = 2
    /// Subspace iterations of the first refresh (random start).
    public var coldIterations: Int = 8
    /// Seed of the random start basis (a function of (seed, item id)).
    public var seed: UInt64 = 42

    public init(dimension: Int = 64) { self.dimension = dimension }
}
