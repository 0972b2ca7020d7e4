/// A Kafka record header.
package struct KafkaHeader: Sendable, Hashable {
    package var name: String
    /// nil for a header with a null value.
    package var value: [UInt8]?

    package init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }
}

/// One record read by `KafkaConsumer.poll`.
package struct ConsumedRecord: Sendable {
    /// Index of `topic` in the consumer's subscription order (`KafkaConsumer.topics`),
    /// -1 if the topic is not in the subscription. Cheaper to switch on than `topic`.
    package var topicIndex: Int
    /// Topic name; shared storage across records of a poll (no per-record allocation).
    package var topic: String
    package var partition: Int32
    package var offset: Int64
    /// nil when the record has no key.
    package var key: [UInt8]?
    /// Empty for a null (tombstone) value; `valueIsNull` tells the two apart.
    package var value: [UInt8]
    /// True for a null (tombstone) value, false for any value, empty ones included.
    package var valueIsNull: Bool
    /// Message timestamp (create time or log-append time), nil when absent.
    package var timestampMs: Int64?
    /// Empty unless the record carries headers.
    package var headers: [KafkaHeader]

    package init(topicIndex: Int, topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8],
                timestampMs: Int64?, headers: [KafkaHeader] = [], valueIsNull: Bool = false) {
        self.valueIsNull = valueIsNull
        self.topicIndex = topicIndex
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestampMs = timestampMs
        self.headers = headers
    }

    package var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}

/// The consumer reached the end of a partition: `offset` is the partition's
/// end offset (high watermark, i.e. the offset the next produced record will
/// get) as reported by the Fetch response, which is correct on Tansu.
package struct PartitionEndEvent: Sendable, Hashable {
    package var topicPartition: TopicPartition
    package var offset: Int64

    package init(topicPartition: TopicPartition, offset: Int64) {
        self.topicPartition = topicPartition
        self.offset = offset
    }
}

/// The result of one `KafkaConsumer.poll`: records in the order librdkafka
/// delivered them (per partition: offset order), partition-end notices and
/// non-fatal errors seen during the poll (fatal ones are thrown instead).
package struct ConsumerPoll: Sendable {
    package var records: [ConsumedRecord] = []
    package var endOfPartition: [PartitionEndEvent] = []
    package var errors: [KafkaError] = []

    package init() {}

    package var isEmpty: Bool { records.isEmpty && endOfPartition.isEmpty && errors.isEmpty }
}
