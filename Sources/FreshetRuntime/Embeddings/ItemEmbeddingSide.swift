import FreshetCore
import FreshetEmbeddings
import FreshetFeatures

/// The item-keyed half of online training, inside an item task.
///
/// It joins impressions with interactions per (user, item) (the task is keyed
/// by item, so both reach it), emits every example to `freshet-examples` with
/// the serving features as of the impression, and trains the rows it owns:
/// the item rows of its partition. The user's vector is read from the user
/// side's latest publication (same process) or is the row's deterministic
/// initial vector; the user-side gradient is not sent anywhere: the owner of
/// the user row trains it from the user's own interactions (UserEmbeddingSide).
/// One writer per parameter, no gradient traffic between tasks.
public final class ItemEmbeddingSide {
    public let trainer: EmbeddingTrainer
    public let joiner: ImpressionJoiner
    let exchange: EmbeddingExchange
    /// Item rows changed since the last checkpoint.
    var changedForCheckpoint: IdSet = []
    public private(set) var examplesEmitted = 0
    /// Users' vectors as read this sync interval: the exchange (a lock) and the
    /// initial-vector fallback (128 Gaussian draws) once per user per interval,
    /// not once per example. Cleared at every sync, when the other side publishes.
    private var userVectors: IdMap<[Float]> = [:]

    public init(settings: Topology.Embeddings, exchange: EmbeddingExchange) {
        trainer = EmbeddingTrainer(config: settings.trainerConfig)
        joiner = ImpressionJoiner(windowMs: settings.joinWindowMs)
        self.exchange = exchange
    }

    /// Folds one item event in; `store` supplies the item's serving features.
    func process(_ event: ItemEvent, store: ItemFeatureStore, output: TaskOutput) {
        switch event.kind {
        case .impression(let position):
            let features = store.features(of: event.itemId)
            let serving = ServingFeatures(interactionCount: exchange.users.interactionCount(event.userId) ?? -1,
                                          popularity7d: features?.popularity7d ?? 0,
                                          impressions7d: features?.impressions7d ?? 0)
            joiner.recordImpression(userId: event.userId, itemId: event.itemId, position: position.map(Int.init),
                                    requestId: event.requestId, ts: event.ts, features: serving)
        case .interaction(let action, let dwellMs):
            guard let exampleAction = ExampleAction(rawValue: action.name) else { return }
            let example = joiner.recordInteraction(EngagementEvent(userId: event.userId, itemId: event.itemId, action: exampleAction,
                                                                   ts: event.ts, dwellMs: dwellMs, requestId: event.requestId))
            handle(example, output: output)
        }
    }

    /// Closes join windows up to the watermark: impressed-but-not-engaged negatives.
    func advance(watermark: EventTimeMs, output: TaskOutput) {
        for example in joiner.advance(watermark: watermark) { handle(example, output: output) }
    }

    private func handle(_ example: TrainingExample, output: TaskOutput) {
        examplesEmitted += 1
        output.example(key: example.userId, value: example.jsonBytes())
        guard trainer.observeItem(example.itemId, positive: example.isPositive, now: example.eventTs) != nil,
              let itemVector = trainer.items.vector(for: example.itemId) else { return }
        let userVector = userVector(example.userId)
        let negatives = example.isPositive ? trainer.sampleNegatives(excluding: example.itemId) : []
        let gradients = trainer.gradients(for: example, userVector: userVector, itemVector: itemVector, negatives: negatives)
        for (itemId, gradient) in gradients.itemGradients where trainer.items.applyGradient(id: itemId, gradient: gradient) {
            changedForCheckpoint.insert(itemId)
        }
    }

    private func userVector(_ user: String) -> [Float] {
        if let vector = userVectors[user] { return vector }
        let vector = exchange.users.vector(user) ?? trainer.users.initialVector(for: user)
        userVectors[user] = vector
        return vector
    }

    /// Touched rows, for Redis and for the other side in this process.
    func takeTouched() -> [(String, [Float])] {
        userVectors.removeAll(keepingCapacity: true)
        let touched = trainer.items.takeTouched().compactMap { id in trainer.items.vector(for: id).map { (id, $0) } }
        exchange.items.publish(vectors: touched)
        return touched
    }
}
