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
    /// The messages' keys (user ids) back to back: key k spans
    /// `keyOffsets[k]..<keyOffsets[k + 1]`.
    package private(set) var keys: [UInt8] = []
    package private(set) var keyOffsets: [Int] = [0]

    package init(_ events: some Sequence<SyntheticEvent>) {
        for e in events {
            payload.append(contentsOf: e.json)
            offsets.append(payload.count)
            topics.append(e.topic)
            timestamps.append(e.timestampMs)
            keys.append(contentsOf: e.key.utf8)
            keyOffsets.append(keys.count)
        }
    }

    package var count: Int { topics.count }

    /// Calls `body(index, topic, messageTimestamp, key, bytes)` for every
    /// message in order; `key(k)` reads any message's key meanwhile (a
    /// look-ahead).
    @inline(__always)
    package func forEachWithKeys(_ body: (Int, SyntheticEvent.Topic, EventTimeMs, UnsafeRawBufferPointer,
                                          _ key: (Int) -> UnsafeRawBufferPointer?) -> Void) {
        payload.withUnsafeBytes { all in
            keys.withUnsafeBytes { allKeys in
                let key = { (k: Int) -> UnsafeRawBufferPointer? in
                    k < topics.count ? UnsafeRawBufferPointer(rebasing: allKeys[keyOffsets[k]..<keyOffsets[k + 1]]) : nil
                }
                for k in 0..<topics.count {
                    body(k, topics[k], timestamps[k], UnsafeRawBufferPointer(rebasing: all[offsets[k]..<offsets[k + 1]]), key)
                }
            }
        }
    }

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
