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
        // Each block is four little-endian bytes: one unaligned load (the
        // byte-wise assembly took twice the instructions; every routed item
        // and every source record's key is hashed).
        for i in 0..<blocks {
            var k = UInt32(littleEndian: data.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))
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
        let positive = hash(key) & 0x7fff_ffff
        let count = UInt32(partitionCount)
        // The same remainder without a division for a power-of-two count (the usual one).
        if count & (count &- 1) == 0 { return Int32(truncatingIfNeeded: positive & (count &- 1)) }
        return Int32(truncatingIfNeeded: positive % count)
    }
}
