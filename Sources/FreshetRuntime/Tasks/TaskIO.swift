import FreshetCore
import FreshetEmbeddings

/// One record as a task sees it: Kafka's coordinates and bytes, nothing of librdkafka.
package struct InputRecord: Sendable {
    package var partition: Int32
    package var offset: Int64
    package var key: [UInt8]?
    /// Empty for a null (tombstone) value; `valueIsNull` tells the two apart.
    package var value: [UInt8]
    package var timestampMs: Int64?
    /// True for a null (tombstone) value: it is dead-lettered with a null value.
    package var valueIsNull: Bool

    package init(partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], timestampMs: Int64?,
                valueIsNull: Bool = false) {
        self.valueIsNull = valueIsNull
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestampMs = timestampMs
    }
}

extension InputRecord {
    /// Calls `body` with a view of this record's bytes (valid during the call).
    package func withView<R>(_ body: (RecordView) -> R) -> R {
        value.withUnsafeBytes { valueBytes in
            guard let key else {
                return body(RecordView(partition: partition, offset: offset, key: nil, value: valueBytes,
                                       timestampMs: timestampMs, valueIsNull: valueIsNull))
            }
            return key.withUnsafeBytes { keyBytes in
                body(RecordView(partition: partition, offset: offset, key: keyBytes, value: valueBytes,
                                timestampMs: timestampMs, valueIsNull: valueIsNull))
            }
        }
    }
}

/// One record as a task sees it on the engine's path: `InputRecord`'s fields
/// with the key and value borrowed from the consumer's message, valid only
/// during the `process` call that receives it (the engine hands out views
/// into librdkafka's messages, so no record is copied on the way in). A task
/// copies what it keeps (`owned()`, for a dead letter).
package struct RecordView {
    package var partition: Int32
    package var offset: Int64
    package var key: UnsafeRawBufferPointer?
    /// Empty for a null (tombstone) value; `valueIsNull` tells the two apart.
    package var value: UnsafeRawBufferPointer
    package var timestampMs: Int64?
    package var valueIsNull: Bool

    package init(partition: Int32, offset: Int64, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
                 timestampMs: Int64?, valueIsNull: Bool = false) {
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestampMs = timestampMs
        self.valueIsNull = valueIsNull
    }

    /// The record with its bytes copied (what outlives the call).
    package func owned() -> InputRecord {
        InputRecord(partition: partition, offset: offset, key: key.map { Array($0) }, value: Array(value),
                    timestampMs: timestampMs, valueIsNull: valueIsNull)
    }
}

/// Which repartition topic a routed record goes to.
package enum RepartitionTarget: Int, Sendable, CaseIterable {
    case items
    case users
    /// `<group>-counts-repartition` (user-keyed; examples on).
    case counts
}

/// Where tasks send what they emit. The engine implements it with the Kafka
/// producer; tests implement it in memory. Calls happen on the processing
/// thread, in the order the task emits.
package protocol TaskOutput: AnyObject {
    /// The largest repartitioned record (encoded bytes) that fits in a message.
    /// A task does not send larger ones: it dead-letters their source record
    /// (reason `record_too_large`) instead.
    var maxRepartitionRecordBytes: Int { get }
    /// Sends `value` to the partition of `target` that owns `key`.
    func repartition(_ target: RepartitionTarget, key: String, value: [UInt8])
    /// The same with the key (valid UTF-8) and value as borrowed bytes, which
    /// the output copies: a source task's per-record path, with no `String`
    /// or array per routed record. The default builds both and calls
    /// `repartition(_:key:value:)`.
    func repartition(_ target: RepartitionTarget, keyBytes: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)
    /// The partition of `target` a record keyed by `keyBytes` goes to, when
    /// the output routes by Kafka's default partitioner; nil when it cannot
    /// say. A source task then packs the shown items of an impression that
    /// share a partition into one record (`ImpressionItemsRecord`); with nil
    /// it sends one record per shown item. The default is nil.
    func partition(of target: RepartitionTarget, keyBytes: UnsafeRawBufferPointer) -> Int32?
    /// `repartition(_:keyBytes:value:)` for a caller that has the key's
    /// partition from `partition(of:keyBytes:)` already (a source task
    /// grouping an impression's shown items by partition): the output does
    /// not hash the key again. `partition` must be what `partition(of:keyBytes:)`
    /// returned for these key bytes. The default ignores it and routes by the key.
    func repartition(_ target: RepartitionTarget, partition: Int32, keyBytes: UnsafeRawBufferPointer,
                     value: UnsafeRawBufferPointer)
    /// Sends a watermark marker to every partition of `target`.
    func broadcast(_ target: RepartitionTarget, value: [UInt8])
    /// Sends the original bytes of a bad record to the dead-letter topic with the reason.
    func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput)
    /// A training example for offline training (`freshet-examples`), keyed by user.
    func example(key: String, value: UnsafeRawBufferPointer)
}

extension TaskOutput {
    package func repartition(_ target: RepartitionTarget, keyBytes: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        repartition(target, key: String(decoding: keyBytes, as: UTF8.self), value: Array(value))
    }

    package func partition(of target: RepartitionTarget, keyBytes: UnsafeRawBufferPointer) -> Int32? { nil }

    package func repartition(_ target: RepartitionTarget, partition: Int32, keyBytes: UnsafeRawBufferPointer,
                             value: UnsafeRawBufferPointer) {
        repartition(target, keyBytes: keyBytes, value: value)
    }

    package func example(key: String, value: UnsafeRawBufferPointer) {}
    package var maxRepartitionRecordBytes: Int { .max }

    /// Writes `example` to the examples topic in `ExampleCodec`'s encoding,
    /// keyed by its user (the joining task's output: a counts task's, or an
    /// item task's without the counts stage).
    package func example(_ example: TrainingExample) {
        ExampleCodec.withEncoded(example) { self.example(key: example.userId, value: $0) }
    }
}
