import Foundation
import FreshetKafka

/// How fast librdkafka alone drains topics from this broker on this machine:
/// the ceiling the end-to-end figure is compared with.
package enum DrainBenchmark {
    /// Reads every record of `topics` with a fresh consumer group, fetching as
    /// the stream processor does (`KafkaConsumer.streamingDefaults`); returns
    /// (records, seconds).
    package static func run(brokers: String, topics: [String]) throws -> (records: Int, seconds: Double) {
        let consumer = try KafkaConsumer(config: KafkaConsumer.withStreamingDefaults(KafkaConfig(bootstrapServers: brokers)),
                                         groupId: "freshet-drain-\(UUID().uuidString.prefix(8))", topics: topics)
        defer { try? consumer.close() }
        var count = 0
        var ended: Set<TopicPartition> = []
        var started: Date?
        let deadline = Date().addingTimeInterval(600)
        while Date() < deadline {
            let poll = try consumer.poll(maxRecords: 10_000, timeoutMs: 100)
            if started == nil && !poll.records.isEmpty { started = Date() }
            var bytes = 0
            for record in poll.records { bytes &+= record.value.count }
            count += poll.records.count
            for end in poll.endOfPartition { ended.insert(end.topicPartition) }
            let assigned = consumer.assignment()
            if !assigned.isEmpty, assigned.allSatisfy(ended.contains), poll.records.isEmpty { break }
            if bytes == -1 { print("") }  // keep the value reads from being optimised away
        }
        return (count, Date().timeIntervalSince(started ?? Date()))
    }
}
