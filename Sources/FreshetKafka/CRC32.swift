/// CRC-32 (IEEE 802.3: reflected polynomial 0xEDB88320, initial value and
/// final xor 0xFFFFFFFF; zlib's `crc32`), the hash of librdkafka's default
/// `consistent_random` partitioner and of its `consistent` one.
package enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    package static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for byte in data { c = t[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        }
        return c ^ 0xFFFF_FFFF
    }
}

extension KafkaProducer {
    /// The partition librdkafka's default partitioner (`consistent_random`,
    /// also `consistent`) picks for a keyed record: `crc32(key) % partitionCount`
    /// (librdkafka's `rd_kafka_msg_partitioner_consistent`). Clients built on
    /// librdkafka (Python's confluent-kafka, Go, .NET, C) use it unless told
    /// `partitioner=murmur2_random`; Java clients use murmur2
    /// (`partition(forKey:partitionCount:)`).
    package static func consistentPartition(forKey key: UnsafeRawBufferPointer, partitionCount: Int32) -> Int32 {
        precondition(partitionCount > 0, "partitionCount must be positive")
        return Int32(truncatingIfNeeded: CRC32.checksum(key) % UInt32(partitionCount))
    }
}
