import FreshetCore

/// One generated Kafka message and what decoding it must produce.
public struct SyntheticEvent: Sendable, Equatable {
    public enum Topic: Sendable, Equatable { case interactions, impressions }

    public enum Expected: Sendable, Equatable {
        case interaction(Interaction)
        case impression(Impression)
        case bad(reason: BadInput.Reason)
    }

    public var topic: Topic
    /// The message key: the user id.
    public var key: String
    /// The message value.
    public var json: [UInt8]
    /// Suggested Kafka message timestamp (the event's time).
    public var timestampMs: EventTimeMs
    public var expected: Expected

    public init(topic: Topic, key: String, json: [UInt8], timestampMs: EventTimeMs, expected: Expected) {
        self.topic = topic
        self.key = key
        self.json = json
        self.timestampMs = timestampMs
        self.expected = expected
    }
}
