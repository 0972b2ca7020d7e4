/// One partition of one topic.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible, Comparable {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public init(_ topic: String, _ partition: Int32) {
        self.init(topic: topic, partition: partition)
    }

    public var description: String { "\(topic)[\(partition)]" }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        a.topic == b.topic ? a.partition < b.partition : a.topic < b.topic
    }
}

/// Special offsets understood by librdkafka (`RD_KAFKA_OFFSET_*`).
public enum KafkaOffset {
    /// Start from the oldest retained record.
    public static let beginning: Int64 = -2
    /// Start after the newest record. NOTE: resolved through ListOffsets, which
    /// Tansu answers wrongly; prefer explicit offsets.
    public static let end: Int64 = -1
    /// Use the committed offset (or `auto.offset.reset` when none).
    public static let stored: Int64 = -1000
    /// "No offset" as returned by librdkafka.
    public static let invalid: Int64 = -1001
}
