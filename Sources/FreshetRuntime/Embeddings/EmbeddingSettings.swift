import FreshetEmbeddings

extension Topology.Embeddings {
    /// The trainer configuration both sides use. The seed must be the same on
    /// every instance: a row's initial vector is a function of (seed, id), which
    /// is what a side uses for the other side's vector before it is published.
    var trainerConfig: EmbeddingTrainerConfig {
        var config = EmbeddingTrainerConfig(loss: loss == "logistic" ? .logistic : .bpr, dimension: dimension, seed: seed)
        config.negatives = negatives
        config.userAdmitAfter = userAdmitAfter
        config.itemAdmitAfter = itemAdmitAfter
        config.ttlMs = ttlMs
        return config
    }
}

/// Vectors published by both sides of one process.
public final class EmbeddingExchange: Sendable {
    public let users = SharedVectorView()
    public let items = SharedVectorView()
    public init() {}
}
