/// One partition of one topic.
package struct TopicPartition: Hashable, Sendable, CustomStringConvertible, Comparable {
    package var topic: String
    package var partition: Int32

    package init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    package init(_ topic: String, _ partition: Int32) {
        self.init(topic: topic, partition: partition)
    }

    package var description: String { "\(topic)[\(partition)]" }

    package static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        a.topic == b.topic ? a.partition < b.partition : a.topic < b.topic
    }
}

/// Special offsets understood by librdkafka (`RD_KAFKA_OFFSET_*`).
package enum KafkaOffset {
    /// Start from the oldest retained record.
    package static let beginning: Int64 = -2
    /// Start after the newest record. NOTE: resolved through ListOffsets, which
    /// Tansu answers wrongly; prefer explicit offsets.
    package static let end: Int64 = -1
    /// Use the committed offset (or `auto.offset.reset` when none).
    package static let stored: Int64 = -1000
    /// "No offset" as returned by librdkafka.
    package static let invalid: Int64 = -1001
}
