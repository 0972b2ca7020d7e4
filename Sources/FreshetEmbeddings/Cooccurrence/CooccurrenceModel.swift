/// The whole co-occurrence learner in one owner: user histories, rows, and
/// the vectors, refreshed every `refreshEvery` positives (counted in events,
/// never in wall time) and at `finish()`. `freshet eval` and the tests use it;
/// the processor runs the same pieces split by ownership (the user stage
/// keeps `UserHistory`, item tasks keep `CooccurrenceRows`, and one refresh
/// runs over the union of every task's rows).
package final class CooccurrenceModel {
    package let config: CooccurrenceConfig
    package let refreshEvery: Int
    package let rows: CooccurrenceRows
    package private(set) var history: UserHistory
    package private(set) var vectors: ItemVectorSet
    package private(set) var refreshes = 0
    private var positivesSinceRefresh = 0

    package init(config: CooccurrenceConfig, refreshEvery: Int = 5_000) {
        self.config = config
        self.refreshEvery = max(1, refreshEvery)
        rows = CooccurrenceRows(config: config)
        history = UserHistory(capacity: config.history)
        vectors = .empty(dimension: config.dimension)
    }

    /// Folds one interaction in (positives only count). Items without a
    /// refreshed vector are folded in from their row right away.
    package func observe(user: String, item: String, positive: Bool, ts: Int64) {
        guard positive else { return }
        let u = ByteId(user), i = ByteId(item)
        let before = history.record(user: u, item: i)
        guard rows.observePositive(item: i, history: before, ts: ts) else { return }
        if vectors.version > 0, let row = rows.row(of: i) {
            vectors.refold(i, degree: rows.degree(of: i), row: row)
        }
        positivesSinceRefresh += 1
        if positivesSinceRefresh >= refreshEvery { refresh() }
    }

    /// Recomputes every vector from the current rows: warm-started from the
    /// last result (cold, `coldIterations`, for the first), or, with
    /// `coldIterations`, from the seeded basis with that many iterations, as
    /// a bounded run's final refresh (`embeddings.final_iterations`).
    package func refresh(coldIterations cold: Int? = nil) {
        positivesSinceRefresh = 0
        let matrix = SymmetricSparseMatrix(rows.snapshot())
        let warm = cold == nil && vectors.version > 0
        let iterations = cold ?? (warm ? config.warmIterations : config.coldIterations)
        vectors = SpectralRefresh.refresh(matrix, dimension: config.dimension, previous: warm ? vectors : nil,
                                          iterations: iterations, seed: config.seed, version: vectors.version + 1)
        refreshes += 1
    }

    /// The session / user vector: mean of the user's recent items' current vectors.
    package func userVector(_ user: String) -> [Float]? { vectors.meanVector(history.items(of: ByteId(user))) }
}
