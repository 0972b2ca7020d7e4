import FreshetCore
import FreshetKafka

/// `TaskOutput` over the Kafka producer: repartitioned records, watermark
/// markers and dead letters. Runs on the processing thread.
final class KafkaTaskOutput: TaskOutput {
    let producer: any EngineProducer
    /// Topic name and partition count of each repartition target, by `RepartitionTarget.rawValue`.
    private let targets: [(topic: String, partitions: Int32)]
    let deadLetterTopic: String
    var examplesTopic: String?
    var examplePartitions: Int32 = 1
    private(set) var deadLetters: [BadInput.Reason: Int] = [:]
    private(set) var produceFailures = 0
    /// Training examples larger than any message, dropped (counted, logged by the engine).
    private(set) var examplesDropped = 0
    /// The most bytes of key + value + headers one produced message may hold:
    /// `output.max_message_bytes` less room for Kafka's per-record framing.
    let messageBudget: Int
    /// The first error that stopped a record from being enqueued. The engine
    /// stops on it: a record that cannot be sent must never be skipped.
    private(set) var fatal: KafkaError?

    /// - Parameter countsTopic: the counts stage's input (same partition count as the users topic); nil without it.
    init(producer: any EngineProducer, itemTopic: String, itemPartitions: Int32, userTopic: String, userPartitions: Int32,
         countsTopic: String? = nil, deadLetterTopic: String, maxMessageBytes: Int = 1_000_000) {
        self.messageBudget = max(1024, maxMessageBytes - Self.framingAllowance)
        self.producer = producer
        var targets = Array(repeating: (topic: "", partitions: Int32(0)), count: RepartitionTarget.allCases.count)
        targets[RepartitionTarget.items.rawValue] = (itemTopic, itemPartitions)
        targets[RepartitionTarget.users.rawValue] = (userTopic, userPartitions)
        if let countsTopic { targets[RepartitionTarget.counts.rawValue] = (countsTopic, userPartitions) }
        self.targets = targets
        var firstBundle: [Int] = []
        var bundleCount = 0
        for target in targets {
            firstBundle.append(bundleCount)
            bundleCount += Int(target.partitions)
        }
        self.firstBundle = firstBundle
        self.bundles = Array(repeating: [], count: bundleCount)
        self.deadLetterTopic = deadLetterTopic
    }

    /// Bundles under construction (see `RecordBundle`), target-major: the
    /// bundle of partition p of target t is `bundles[firstBundle[t] + p]`
    /// (one flat array: a routed record's append goes through one array, not two).
    // Appended to per routed record, on the processing thread only: no
    // dynamic exclusivity checks.
    @exclusivity(unchecked) private var bundles: [[UInt8]]
    /// Index in `bundles` of each target's (`RepartitionTarget.rawValue`) partition 0.
    private let firstBundle: [Int]
    private var exampleBundles: [[UInt8]] = []
    /// A bundle is sent once it reaches this size, or at the end of the polled batch.
    static let bundleBytes = 256 * 1024
    /// Bytes kept free under `message.max.bytes` for the record's framing
    /// (lengths, attributes, timestamp and offset deltas).
    static let framingAllowance = 512
    /// A bundle's leading byte plus the longest length varint.
    static let bundleEntryOverhead = 1 + 10

    var maxRepartitionRecordBytes: Int { messageBudget - Self.bundleEntryOverhead }

    func repartition(_ target: RepartitionTarget, key: String, value: [UInt8]) {
        var key = key
        key.withUTF8 { keyBytes in
            value.withUnsafeBytes { repartition(target, keyBytes: UnsafeRawBufferPointer(keyBytes), value: $0) }
        }
    }

    func repartition(_ target: RepartitionTarget, keyBytes: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let partition = KafkaProducer.partition(forKey: keyBytes, partitionCount: targets[target.rawValue].partitions)
        repartition(target, partition: partition, keyBytes: keyBytes, value: value)
    }

    /// The key's partition given (`partition(of:keyBytes:)`'s, so the same);
    /// `keyBytes` is not read again.
    @inline(__always)
    func repartition(_ target: RepartitionTarget, partition: Int32, keyBytes: UnsafeRawBufferPointer,
                     value: UnsafeRawBufferPointer) {
        let t = target.rawValue
        let b = firstBundle[t] + Int(partition)
        // A bundle never outgrows one message: send it before a record that would not fit.
        if bundles[b].count + value.count + Self.bundleEntryOverhead > messageBudget { sendBundle(t, Int(partition)) }
        RecordBundle.append(value, to: &bundles[b])
        if bundles[b].count >= Self.bundleBytes { sendBundle(t, Int(partition)) }
    }

    func partition(of target: RepartitionTarget, keyBytes: UnsafeRawBufferPointer) -> Int32? {
        KafkaProducer.partition(forKey: keyBytes, partitionCount: targets[target.rawValue].partitions)
    }

    /// Markers follow the records they cover: pending bundles go first.
    func broadcast(_ target: RepartitionTarget, value: [UInt8]) {
        sendPendingBundles()
        let (topic, partitions) = targets[target.rawValue]
        for partition in 0..<partitions {
            send(topic: topic, partition: partition, key: nil, value: value)
        }
    }

    /// Sends every bundle under construction. Called after each polled batch and
    /// before the producer is flushed for a checkpoint.
    func sendPendingBundles() {
        for t in targets.indices {
            for index in 0..<Int(targets[t].partitions) where !bundles[firstBundle[t] + index].isEmpty {
                sendBundle(t, index)
            }
        }
        if let examplesTopic {
            for index in exampleBundles.indices where !exampleBundles[index].isEmpty {
                send(topic: examplesTopic, partition: Int32(index), key: nil, value: exampleBundles[index])
                exampleBundles[index].removeAll(keepingCapacity: true)
            }
        }
    }

    private func sendBundle(_ target: Int, _ index: Int) {
        let b = firstBundle[target] + index
        guard !bundles[b].isEmpty else { return }
        send(topic: targets[target].topic, partition: Int32(index), key: nil, value: bundles[b])
        bundles[b].removeAll(keepingCapacity: true)
    }

    /// Dead letters carry the original bytes as the value (null for a null
    /// value) and the original key; where they came from and why travel in
    /// headers (see README, "Dead letters"). A letter that would not fit in
    /// one message has its value (then its key) cut to fit, and says so in
    /// `freshet.value.truncated` / `freshet.key.truncated` (original length);
    /// the source headers locate the whole record.
    func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput) {
        deadLetters[reason.reason, default: 0] += 1
        let letter = Self.deadLetter(sourceTopic: sourceTopic, record: record, reason: reason, budget: messageBudget)
        do {
            try producer.produce(topic: deadLetterTopic, partition: nil, key: letter.key, value: letter.value,
                                 headers: letter.headers, timestampMs: record.timestampMs)
        } catch {
            produceFailures += 1
            if fatal == nil { fatal = error }
        }
    }

    /// The key, value and headers of a dead letter that fits in `budget` bytes
    /// (key + value + headers, as librdkafka counts against `message.max.bytes`).
    static func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput,
                           budget: Int) -> (key: [UInt8]?, value: [UInt8]?, headers: [(String, [UInt8])]) {
        var headers: [(String, [UInt8])] = [
            ("freshet.source.topic", Array(sourceTopic.utf8)),
            ("freshet.source.partition", Array(String(record.partition).utf8)),
            ("freshet.source.offset", Array(String(record.offset).utf8)),
            ("freshet.error.reason", Array(reason.reason.rawValue.utf8)),
            ("freshet.error.detail", Array(reason.detail.utf8.prefix(1024))),
        ]
        var key = record.key
        var value: [UInt8]? = record.valueIsNull ? nil : record.value
        func headerBytes() -> Int { headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.count + 16 } }
        let keyCount = key?.count ?? 0
        let valueCount = value?.count ?? 0
        guard keyCount + valueCount + headerBytes() > budget else { return (key, value, headers) }
        // Room for both truncation headers, then the value gets what the key leaves.
        headers.append(("freshet.value.truncated", Array(String(valueCount).utf8)))
        if keyCount + headerBytes() + 64 > budget {
            headers.append(("freshet.key.truncated", Array(String(keyCount).utf8)))
            key = key.map { Array($0.prefix(max(0, budget / 2 - headerBytes()))) }
        }
        let room = max(0, budget - (key?.count ?? 0) - headerBytes())
        value = value.map { Array($0.prefix(room)) }
        return (key, value, headers)
    }

    /// Examples travel in bundles of the compact encoding (`ExampleCodec`:
    /// the header `F` `X` `1`, then self-delimiting examples), many per
    /// message, partitioned by user. One example larger than a message is
    /// dropped and counted (`examplesDropped`).
    func example(key: String, value: UnsafeRawBufferPointer) {
        guard let examplesTopic else { return }
        let header = Self.exampleBundleHeader
        guard value.count + header.count <= messageBudget else {
            examplesDropped += 1
            return
        }
        // Partitioned as the producer partitions the key's bytes (no copy of them).
        var key = key
        let partition = key.withUTF8 { Int(KafkaProducer.partition(forKey: UnsafeRawBufferPointer($0), partitionCount: examplePartitions)) }
        if exampleBundles.isEmpty { exampleBundles = Array(repeating: [], count: Int(examplePartitions)) }
        if exampleBundles[partition].count + value.count > messageBudget {
            send(topic: examplesTopic, partition: Int32(partition), key: nil, value: exampleBundles[partition])
            exampleBundles[partition].removeAll(keepingCapacity: true)
        }
        // Mutated in place: copying a bundle out and back would copy it on every append.
        if exampleBundles[partition].isEmpty { exampleBundles[partition].append(contentsOf: header) }
        exampleBundles[partition].append(contentsOf: value)
        if exampleBundles[partition].count >= Self.bundleBytes {
            send(topic: examplesTopic, partition: Int32(partition), key: nil, value: exampleBundles[partition])
            exampleBundles[partition].removeAll(keepingCapacity: true)
        }
    }

    /// `ExampleCodec.header` (kept here so this file needs no embeddings import).
    static let exampleBundleHeader: [UInt8] = [0x46, 0x58, 0x01]

    private func send(topic: String, partition: Int32?, key: [UInt8]?, value: [UInt8]) {
        do {
            try producer.produce(topic: topic, partition: partition, key: key, value: value, headers: [], timestampMs: nil)
        } catch {
            produceFailures += 1
            if fatal == nil { fatal = error }
        }
    }

    func takeDeadLetterCounts() -> [BadInput.Reason: Int] {
        defer { deadLetters.removeAll(keepingCapacity: true) }
        return deadLetters
    }
}
