/// One consumed record, borrowed from librdkafka for the duration of one call
/// of the `each` closure of `KafkaConsumer.poll(maxRecords:timeoutMs:each:)`.
///
/// `key` and `value` point into librdkafka's message, which is destroyed when
/// the closure returns: copy whatever must outlive the call. Nothing is
/// copied or allocated per record to make the view (the owning `poll`
/// copies key and value into two arrays per record, and its callers paid
/// for those arrays' allocation, retains and release on every record).
/// Headers are not read.
package struct ConsumedRecordView {
    /// Index of the topic in the consumer's subscription order
    /// (`KafkaConsumer.topics`), -1 if the topic is not in the subscription.
    package var topicIndex: Int
    package var partition: Int32
    package var offset: Int64
    /// nil when the record has no key.
    package var key: UnsafeRawBufferPointer?
    /// Empty for a null (tombstone) value; `valueIsNull` tells the two apart.
    package var value: UnsafeRawBufferPointer
    /// True for a null (tombstone) value, false for any value, empty ones included.
    package var valueIsNull: Bool
    /// Message timestamp (create time or log-append time), nil when absent.
    package var timestampMs: Int64?

    package init(topicIndex: Int, partition: Int32, offset: Int64, key: UnsafeRawBufferPointer?,
                 value: UnsafeRawBufferPointer, valueIsNull: Bool, timestampMs: Int64?) {
        self.topicIndex = topicIndex
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.valueIsNull = valueIsNull
        self.timestampMs = timestampMs
    }
}

/// What a `KafkaConsumer.poll(maxRecords:timeoutMs:each:)` saw besides the
/// records it handed out: how many, partition-end notices and non-fatal
/// errors (fatal ones are thrown).
package struct ConsumerPollSummary: Sendable {
    package var records = 0
    package var endOfPartition: [PartitionEndEvent] = []
    package var errors: [KafkaError] = []

    package init() {}
}
