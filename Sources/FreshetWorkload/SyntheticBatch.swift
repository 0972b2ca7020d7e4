import FreshetCore

/// Synthetic messages packed back to back in one buffer, as a Kafka fetch
/// response holds them, so benchmarks measure the decoder rather than the
/// pointer chasing and reference counting of one heap array per message.
package struct SyntheticBatch: Sendable {
    package private(set) var payload: [UInt8] = []
    /// Message k spans `offsets[k]..<offsets[k + 1]`.
    package private(set) var offsets: [Int] = [0]
    package private(set) var topics: [SyntheticEvent.Topic] = []
    package private(set) var timestamps: [EventTimeMs] = []

    package init(_ events: some Sequence<SyntheticEvent>) {
        for e in events {
            payload.append(contentsOf: e.json)
            offsets.append(payload.count)
            topics.append(e.topic)
            timestamps.append(e.timestampMs)
        }
    }

    package var count: Int { topics.count }

    /// Calls `body(topic, messageTimestamp, bytes)` for every message in order.
    @inline(__always)
    package func forEach(_ body: (SyntheticEvent.Topic, EventTimeMs, UnsafeRawBufferPointer) -> Void) {
        payload.withUnsafeBytes { all in
            for k in 0..<topics.count {
                body(topics[k], timestamps[k], UnsafeRawBufferPointer(rebasing: all[offsets[k]..<offsets[k + 1]]))
            }
        }
    }
}
