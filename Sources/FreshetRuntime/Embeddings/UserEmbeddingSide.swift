import Foundation
import FreshetCore
import FreshetEmbeddings

/// The user-keyed half of online training, inside the task that owns the
/// user's features (an `interactions` task, or a `users` task when the input
/// is not keyed by user).
///
/// It trains the user rows of its partition from the user's own interactions:
/// a positive against k negatives drawn from the items of recent positives
/// (so by frequency) with the log(N·Q) correction, a skip as an explicit
/// negative. The item vectors are the item side's latest publication (same
/// process) or the rows' deterministic initial vectors. Users without an
/// admitted row are served the mean of their positive items' vectors
/// (pseudo-user, marked `embedding_kind: pseudo`).
public final class UserEmbeddingSide {
    public let trainer: EmbeddingTrainer
    let exchange: EmbeddingExchange
    let negatives: Int
    /// Recent positive item ids: uniform draws from it are frequency-proportional draws.
    private var recent: [String] = []
    private var recentCounts: IdMap<Int> = [:]
    private var recentNext = 0
    private let recentCapacity = 4_096
    private var random: UInt64
    struct Pseudo { var sum: [Float]; var count: Int }
    private(set) var pseudo: IdMap<Pseudo> = [:]
    private var pseudoTouched: IdSet = []
    var changedForCheckpoint: IdSet = []
    /// Items' vectors as read this sync interval (see ItemEmbeddingSide.userVectors).
    private var itemVectors: IdMap<[Float]> = [:]

    public init(settings: Topology.Embeddings, exchange: EmbeddingExchange) {
        trainer = EmbeddingTrainer(config: settings.trainerConfig)
        self.exchange = exchange
        negatives = settings.negatives
        random = settings.seed | 1
    }

    func process(_ interaction: Interaction) {
        let user = interaction.userId
        let item = interaction.itemId
        let itemVector = itemVectorFor(item)
        let row = trainer.users.observe(user, now: interaction.ts)
        if interaction.action.isPositive { remember(item) }
        guard row != nil, let userVector = trainer.users.vector(for: user) else {
            if interaction.action.isPositive { addToPseudo(user, itemVector) }
            return
        }
        pseudo[user] = nil
        let action = ExampleAction(rawValue: interaction.action.name) ?? .click
        let example = TrainingExample(label: action.isPositive ? .positive : .negative, userId: user, itemId: item,
                                      action: action, position: nil, dwellMs: interaction.dwellMs,
                                      requestId: interaction.requestId, impressionTs: nil, eventTs: interaction.ts,
                                      features: nil, late: false)
        let sampled = action.isPositive ? sampleNegatives(excluding: item) : []
        let gradients = trainer.gradients(for: example, userVector: userVector, itemVector: itemVector, negatives: sampled)
        if trainer.users.applyGradient(id: user, gradient: gradients.userGradient) { changedForCheckpoint.insert(user) }
    }

    private func itemVectorFor(_ item: String) -> [Float] {
        if let vector = itemVectors[item] { return vector }
        let vector = exchange.items.vector(item) ?? trainer.items.initialVector(for: item)
        itemVectors[item] = vector
        return vector
    }

    private func remember(_ item: String) {
        if recent.count < recentCapacity {
            recent.append(item)
        } else {
            let old = recent[recentNext]
            recentCounts[old, default: 1] -= 1
            if recentCounts[old] == 0 { recentCounts[old] = nil }
            recent[recentNext] = item
            recentNext = (recentNext + 1) % recentCapacity
        }
        recentCounts[item, default: 0] += 1
    }

    private func sampleNegatives(excluding item: String) -> [SampledNegative] {
        guard recent.count > 1, negatives > 0 else { return [] }
        var result: [SampledNegative] = []
        let distinct = Float(recentCounts.count)
        for _ in 0..<negatives {
            random = random &* 6364136223846793005 &+ 1442695040888963407
            let candidate = recent[Int((random >> 33) % UInt64(recent.count))]
            guard candidate != item else { continue }
            let q = Float(recentCounts[candidate] ?? 1) / Float(recent.count)
            // log(N·Q): the correction relative to uniform sampling (DESIGN, Yi et al. 2019).
            result.append(SampledNegative(itemId: candidate, vector: itemVectorFor(candidate), correction: log(distinct * q)))
        }
        return result
    }

    private func addToPseudo(_ user: String, _ itemVector: [Float]) {
        var entry = pseudo[user] ?? Pseudo(sum: [Float](repeating: 0, count: itemVector.count), count: 0)
        for index in 0..<itemVector.count { entry.sum[index] += itemVector[index] }
        entry.count += 1
        pseudo[user] = entry
        pseudoTouched.insert(user)
    }

    /// Vector serving gets for a user without a row: the mean of their positive
    /// items' vectors, bias coordinate set back to 1 (it scores like a real user).
    func pseudoVector(_ user: String) -> [Float]? {
        guard let entry = pseudo[user], entry.count > 0 else { return nil }
        var mean = entry.sum.map { $0 / Float(entry.count) }
        mean[mean.count - 1] = 1
        return mean
    }

    /// Touched rows (trained or pseudo), for Redis and for the item side in this process.
    func takeTouched() -> [(id: String, vector: [Float], pseudo: Bool)] {
        itemVectors.removeAll(keepingCapacity: true)
        var result: [(id: String, vector: [Float], pseudo: Bool)] = []
        for id in trainer.users.takeTouched() {
            if let vector = trainer.users.vector(for: id) { result.append((id, vector, false)) }
        }
        for id in pseudoTouched {
            if let vector = pseudoVector(id) { result.append((id, vector, true)) }
        }
        pseudoTouched.removeAll(keepingCapacity: true)
        exchange.users.publish(vectors: result.filter { !$0.pseudo }.map { ($0.id, $0.vector) })
        return result
    }
}
