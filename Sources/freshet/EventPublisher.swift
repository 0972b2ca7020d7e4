import Foundation
import FreshetCore
import FreshetKafka

/// Sends pre-encoded events to Kafka at a steady rate (or as fast as the
/// producer takes them), keyed by user unless told to use random keys.
/// Blocking: runs on the caller's thread.
struct EventPublisher {
    let producer: KafkaProducer
    let interactionsTopic: String
    let impressionsTopic: String
    /// Events per second; 0 means no pacing.
    let rate: Int
    let randomKeys: Bool
    var progress: ((Int) -> Void)?
    /// The client's limit on one record (librdkafka's `message.max.bytes`):
    /// far above any broker's, so the broker's own limit is the one that applies.
    static let maxMessageBytes = 64 << 20

    init(brokers: String, interactionsTopic: String, impressionsTopic: String, rate: Int, randomKeys: Bool) throws {
        // The broker's limit decides what size it takes, not the client's
        // 1,000,000-byte default: a replay must be able to send the large
        // records the processor handles (README, "Oversized records").
        producer = try KafkaProducer(config: KafkaConfig(bootstrapServers: brokers,
                                                         properties: ["linger.ms": "20", "message.max.bytes": String(Self.maxMessageBytes)]))
        self.interactionsTopic = interactionsTopic
        self.impressionsTopic = impressionsTopic
        self.rate = rate
        self.randomKeys = randomKeys
    }

    /// Publishes every event of `events`; returns how many were sent.
    /// `shouldStop` is checked between events.
    @discardableResult
    func publish<S: Sequence>(_ events: S, shouldStop: () -> Bool = { false }) throws -> Int
    where S.Element == (isImpression: Bool, key: String, json: [UInt8]) {
        let interactions = try producer.topic(interactionsTopic)
        let impressions = try producer.topic(impressionsTopic)
        var sent = 0
        let started = DispatchTime.now().uptimeNanoseconds
        var random = SplitMix64(seed: UInt64(started))
        for event in events {
            if shouldStop() { break }
            var key = Array(event.key.utf8)
            if randomKeys {
                key = Array("k\(random.next() >> 33)".utf8)
            }
            // An empty key means "no user id to key by" (ids are never empty): no key.
            do {
                try key.withUnsafeBytes { keyBytes in
                    try event.json.withUnsafeBytes { valueBytes in
                        try producer.produce(to: event.isImpression ? impressions : interactions,
                                             key: key.isEmpty ? nil : keyBytes, value: valueBytes)
                    }
                }
            } catch let error as KafkaError {
                // The events before it were queued: deliver them before stopping,
                // and say which event it was.
                let flushed = (try? producer.flush(timeoutMs: 60_000)) != nil && producer.deliveryFailures == 0
                throw KafkaError(code: error.code, name: error.name,
                                 message: "event \(sent + 1) (\(event.json.count) bytes) was not sent: \(error.message); "
                                     + (flushed ? "the \(sent) events before it were delivered" : "of the \(sent) events before it, \(producer.deliveryFailures) were not delivered"),
                                 isRetriable: false, isFatal: false, context: "publish events")
            }
            sent += 1
            if sent % 1024 == 0 {
                producer.poll(timeoutMs: 0)
                progress?(sent)
            }
            if rate > 0 {
                // Pace against the start time so bursts and stalls even out.
                let due = started + UInt64(Double(sent) / Double(rate) * 1e9)
                let now = DispatchTime.now().uptimeNanoseconds
                if due > now { usleep(useconds_t(min((due - now) / 1000, 1_000_000))) }
            }
        }
        try producer.flush(timeoutMs: 60_000)
        let failures = producer.deliveryFailures
        if failures > 0 {
            throw KafkaError(code: -1, name: "DELIVERY_FAILED", message: "\(failures) events were not delivered",
                             isRetriable: false, isFatal: false, context: "publish events")
        }
        return sent
    }
}
