/// Receives partition assignment changes. All methods are called on the
/// thread that is inside `KafkaConsumer.poll` or `KafkaConsumer.close` (never
/// concurrently with each other), and the consumer waits for them to return.
///
/// Do not call `poll` or `close` from inside a callback; `commit`, `seek`,
/// `committedOffsets`, `pause`/`resume` and `assignment` are fine.
package protocol RebalanceListener: AnyObject {
    /// Partitions are being added. Return start offsets (the next offset to read)
    /// for those partitions that have one (e.g. restored from a checkpoint);
    /// partitions left out start at the committed offset, or at the earliest
    /// offset when the group has none (`auto.offset.reset=earliest`).
    func partitionsAssigned(_ partitions: [TopicPartition], consumer: KafkaConsumer) -> [TopicPartition: Int64]
    /// Partitions are about to be taken away, still owned: flush, checkpoint and
    /// commit synchronously here. They are unassigned when this returns.
    func partitionsRevoked(_ partitions: [TopicPartition], consumer: KafkaConsumer)
    /// Partitions were lost (session timeout, fenced): another member may
    /// already own them, so do NOT commit or write for them; drop their state.
    /// The default does nothing; implement it whenever `partitionsRevoked`
    /// commits or checkpoints (it is not called for lost partitions).
    func partitionsLost(_ partitions: [TopicPartition], consumer: KafkaConsumer)
}

extension RebalanceListener {
    package func partitionsLost(_ partitions: [TopicPartition], consumer: KafkaConsumer) {}
}

/// A `RebalanceListener` made of closures.
package final class ClosureRebalanceListener: RebalanceListener {
    package var onAssigned: ([TopicPartition], KafkaConsumer) -> [TopicPartition: Int64]
    package var onRevoked: ([TopicPartition], KafkaConsumer) -> Void
    package var onLost: ([TopicPartition], KafkaConsumer) -> Void

    package init(onAssigned: @escaping ([TopicPartition], KafkaConsumer) -> [TopicPartition: Int64] = { _, _ in [:] },
                onRevoked: @escaping ([TopicPartition], KafkaConsumer) -> Void = { _, _ in },
                onLost: @escaping ([TopicPartition], KafkaConsumer) -> Void = { _, _ in }) {
        self.onAssigned = onAssigned
        self.onRevoked = onRevoked
        self.onLost = onLost
    }

    package func partitionsAssigned(_ partitions: [TopicPartition], consumer: KafkaConsumer) -> [TopicPartition: Int64] {
        onAssigned(partitions, consumer)
    }

    package func partitionsRevoked(_ partitions: [TopicPartition], consumer: KafkaConsumer) {
        onRevoked(partitions, consumer)
    }

    package func partitionsLost(_ partitions: [TopicPartition], consumer: KafkaConsumer) {
        onLost(partitions, consumer)
    }
}
