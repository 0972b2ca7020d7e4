import FreshetCore

/// One generated Kafka message and what decoding it must produce.
package struct SyntheticEvent: Sendable, Equatable {
    package enum Topic: Sendable, Equatable { case interactions, impressions }

    package enum Expected: Sendable, Equatable {
        case interaction(Interaction)
        case impression(Impression)
        case bad(reason: BadInput.Reason)
    }

    package var topic: Topic
    /// The message key: the user id.
    package var key: String
    /// The message value.
    package var json: [UInt8]
    /// Suggested Kafka message timestamp (the event's time).
    package var timestampMs: EventTimeMs
    package var expected: Expected

    package init(topic: Topic, key: String, json: [UInt8], timestampMs: EventTimeMs, expected: Expected) {
        self.topic = topic
        self.key = key
        self.json = json
        self.timestampMs = timestampMs
        self.expected = expected
    }
}
