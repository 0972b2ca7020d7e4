import FreshetCore
import FreshetKafka

/// `TaskOutput` over the Kafka producer: repartitioned records, watermark
/// markers and dead letters. Runs on the processing thread.
final class KafkaTaskOutput: TaskOutput {
    let producer: KafkaProducer
    let itemTopic: String
    let itemPartitions: Int32
    let userTopic: String
    let userPartitions: Int32
    let deadLetterTopic: String
    var examplesTopic: String?
    private(set) var deadLetters: [BadInput.Reason: Int] = [:]
    private(set) var produceFailures = 0
    /// The first error that stopped a record from being enqueued. The engine
    /// stops on it: a record that cannot be sent must never be skipped.
    private(set) var fatal: KafkaError?

    init(producer: KafkaProducer, itemTopic: String, itemPartitions: Int32, userTopic: String, userPartitions: Int32,
         deadLetterTopic: String) {
        self.producer = producer
        self.itemTopic = itemTopic
        self.itemPartitions = itemPartitions
        self.userTopic = userTopic
        self.userPartitions = userPartitions
        self.deadLetterTopic = deadLetterTopic
    }

    func repartition(_ target: RepartitionTarget, key: String, value: [UInt8]) {
        let (topic, partitions) = target == .items ? (itemTopic, itemPartitions) : (userTopic, userPartitions)
        let keyBytes = Array(key.utf8)
        let partition = KafkaProducer.partition(forKey: keyBytes, partitionCount: partitions)
        send(topic: topic, partition: partition, key: keyBytes, value: value)
    }

    func broadcast(_ target: RepartitionTarget, value: [UInt8]) {
        let (topic, partitions) = target == .items ? (itemTopic, itemPartitions) : (userTopic, userPartitions)
        for partition in 0..<partitions {
            send(topic: topic, partition: partition, key: nil, value: value)
        }
    }

    /// Dead letters carry the original bytes as the value and the original key;
    /// where they came from and why travel in headers (see README, "Dead letters").
    func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput) {
        deadLetters[reason.reason, default: 0] += 1
        let headers: [(String, [UInt8])] = [
            ("freshet.source.topic", Array(sourceTopic.utf8)),
            ("freshet.source.partition", Array(String(record.partition).utf8)),
            ("freshet.source.offset", Array(String(record.offset).utf8)),
            ("freshet.error.reason", Array(reason.reason.rawValue.utf8)),
            ("freshet.error.detail", Array(reason.detail.utf8)),
        ]
        do {
            try producer.produce(topic: deadLetterTopic, partition: nil, key: record.key, value: record.value,
                                 headers: headers, timestampMs: record.timestampMs)
        } catch {
            produceFailures += 1
            if fatal == nil { fatal = error }
        }
    }

    func example(key: String, value: [UInt8]) {
        guard let examplesTopic else { return }
        send(topic: examplesTopic, partition: nil, key: Array(key.utf8), value: value)
    }

    private func send(topic: String, partition: Int32?, key: [UInt8]?, value: [UInt8]) {
        do {
            try producer.produce(topic: topic, partition: partition, key: key, value: value)
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
