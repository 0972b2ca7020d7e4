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

/// 32-bit FNV-1a (offset basis 0x811C9DC5, prime 0x01000193; Fowler, Noll
/// and Vo), the hash of librdkafka's `fnv1a` partitioners and of Sarama's
/// (Go) default one.
package enum FNV1a {
    package static func hash(_ data: UnsafeRawBufferPointer) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for byte in data { h = (h ^ UInt32(byte)) &* 0x0100_0193 }
        return h
    }
}

extension KafkaProducer {
    /// The partition librdkafka's `fnv1a` partitioner and Sarama's (Go)
    /// default hash partitioner pick for a keyed record: the hash as a
    /// signed 32-bit number, its remainder (truncated, as C's `%`), made
    /// non-negative.
    package static func fnv1aPartition(forKey key: UnsafeRawBufferPointer, partitionCount: Int32) -> Int32 {
        precondition(partitionCount > 0, "partitionCount must be positive")
        return abs(Int32(bitPattern: FNV1a.hash(key)) % partitionCount)
    }

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
