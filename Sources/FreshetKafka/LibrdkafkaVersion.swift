import CRdKafka

/// Version of the librdkafka actually loaded at run time (`rd_kafka_version`),
/// which may differ from the headers we compiled against (Debian's 2.0.2).
package enum LibrdkafkaVersion {
    /// E.g. `"2.6.1"`.
    package static var string: String { String(cString: rd_kafka_version_str()) }
    /// `0xMMmmrrxx` as in `RD_KAFKA_VERSION`.
    package static var number: Int { Int(rd_kafka_version()) }
    /// 2.0.2 cannot parse current brokers' ApiVersions replies (librdkafka
    /// issue 4278); run with `LD_LIBRARY_PATH` pointing at a 2.1.1+ build.
    package static var isAtLeast2_1_1: Bool { number >= 0x0201_0100 }
    /// What to tell the user when the loaded librdkafka is too old (nil when
    /// it is not): every command that talks to Kafka says it at start-up, so
    /// the broker errors that follow are not the only clue.
    package static var tooOldWarning: String? {
        guard !isAtLeast2_1_1 else { return nil }
        return "librdkafka \(string) is older than 2.1.1: it mis-parses current brokers' ApiVersions replies "
            + "(librdkafka issue 4278) and will not connect. Put Confluent's build first on LD_LIBRARY_PATH "
            + "(source scripts/env.sh after scripts/setup.sh)."
    }
    /// `fetch.queue.backoff.ms` exists from 2.2.0 on; an older library
    /// refuses the property, so it is set only where it exists.
    package static let fetchQueueBackoffSince = 0x0202_0000

    /// Version of the headers this module was compiled against.
    package static var headerNumber: Int { Int(RD_KAFKA_VERSION) }
}
