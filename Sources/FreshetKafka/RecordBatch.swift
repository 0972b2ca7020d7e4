import CRdKafka

/// Records of one or more polls in reusable contiguous storage: one byte
/// buffer for all keys and values plus a fixed-size entry per record, so a
/// batch reused across polls (`removeAll()` keeps capacity) allocates nothing
/// per record. Filled by `KafkaConsumer.poll(into:maxRecords:timeoutMs:)`.
package struct RecordBatch: Sendable {
    package struct Entry: Sendable, Hashable {
        /// Index into `RecordBatch.topicNames` (the consumer's subscription order first).
        package var topicIndex: Int
        package var partition: Int32
        package var offset: Int64
        /// -1 when absent.
        package var timestampMs: Int64
        var keyStart: Int
        /// -1 for a record without key.
        var keyCount: Int
        var valueStart: Int
        var valueCount: Int

        package var hasKey: Bool { keyCount >= 0 }
    }

    package private(set) var entries: [Entry] = []
    /// Keys and values, back to back.
    package private(set) var bytes: [UInt8] = []
    /// Topic names indexed by `Entry.topicIndex`: the subscription order, then
    /// any other topic seen.
    package var topicNames: [String] = []
    package var endOfPartition: [PartitionEndEvent] = []
    package var errors: [KafkaError] = []

    package init(capacity: Int = 0, byteCapacity: Int = 0) {
        entries.reserveCapacity(capacity)
        bytes.reserveCapacity(byteCapacity)
    }

    package var count: Int { entries.count }
    package var isEmpty: Bool { entries.isEmpty }

    /// Empties the batch, keeping its storage (and topic table).
    package mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
        endOfPartition.removeAll(keepingCapacity: true)
        errors.removeAll(keepingCapacity: true)
    }

    package func topic(at i: Int) -> String { topicNames[entries[i].topicIndex] }

    /// The key bytes (a view into the batch's storage), nil when the record has no key.
    package func key(at i: Int) -> ArraySlice<UInt8>? {
        let e = entries[i]
        return e.keyCount < 0 ? nil : bytes[e.keyStart..<(e.keyStart + e.keyCount)]
    }

    /// The value bytes (a view into the batch's storage).
    package func value(at i: Int) -> ArraySlice<UInt8> {
        let e = entries[i]
        return bytes[e.valueStart..<(e.valueStart + e.valueCount)]
    }

    /// Borrowed access to the value bytes without copying.
    package func withValue<R>(at i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let e = entries[i]
        return try bytes.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[e.valueStart..<(e.valueStart + e.valueCount)]))
        }
    }

    /// A standalone copy of record `i` (allocates).
    package func record(at i: Int) -> ConsumedRecord {
        let e = entries[i]
        return ConsumedRecord(topicIndex: e.topicIndex, topic: topicNames[e.topicIndex], partition: e.partition,
                              offset: e.offset, key: key(at: i).map(Array.init), value: Array(value(at: i)),
                              timestampMs: e.timestampMs >= 0 ? e.timestampMs : nil)
    }

    mutating func append(_ m: rd_kafka_message_t, topicIndex: Int, timestampMs: Int64?) {
        let keyStart = bytes.count
        var keyCount = -1
        if let k = m.key {
            bytes.append(contentsOf: UnsafeRawBufferPointer(start: k, count: m.key_len))
            keyCount = m.key_len
        }
        let valueStart = bytes.count
        var valueCount = 0
        if let v = m.payload {
            bytes.append(contentsOf: UnsafeRawBufferPointer(start: v, count: m.len))
            valueCount = m.len
        }
        entries.append(Entry(topicIndex: topicIndex, partition: m.partition, offset: m.offset,
                             timestampMs: timestampMs ?? -1, keyStart: keyStart, keyCount: keyCount,
                             valueStart: valueStart, valueCount: valueCount))
    }
}
