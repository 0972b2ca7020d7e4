/// Java-compatible murmur2, the hash of Kafka's default partitioner and of
/// librdkafka's `murmur2` / `murmur2_random` partitioners.
enum Murmur2 {
    static func hash(_ data: UnsafeRawBufferPointer) -> UInt32 {
        let seed: UInt32 = 0x9747_b28c
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        let length = data.count
        var h: UInt32 = seed ^ UInt32(truncatingIfNeeded: length)
        let blocks = length / 4
        for i in 0..<blocks {
            let b = i * 4
            var k = UInt32(data[b]) | UInt32(data[b + 1]) << 8 | UInt32(data[b + 2]) << 16 | UInt32(data[b + 3]) << 24
            k &*= m
            k ^= k >> r
            k &*= m
            h &*= m
            h ^= k
        }
        let tail = blocks * 4
        switch length & 3 {
        case 3:
            h ^= UInt32(data[tail + 2]) << 16
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h &*= m
        case 2:
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h &*= m
        case 1:
            h ^= UInt32(data[tail])
            h &*= m
        default:
            break
        }
        h ^= h >> 13
        h &*= m
        h ^= h >> 15
        return h
    }

    /// Kafka's choice for a keyed record: `(murmur2(key) & 0x7fffffff) % partitionCount`.
    static func partition(_ key: UnsafeRawBufferPointer, partitionCount: Int32) -> Int32 {
        precondition(partitionCount > 0, "partitionCount must be positive")
        return Int32(truncatingIfNeeded: (hash(key) & 0x7fff_ffff) % UInt32(partitionCount))
    }
}
