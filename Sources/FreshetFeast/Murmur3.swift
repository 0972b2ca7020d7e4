/// MurmurHash3, x86 32-bit variant (Austin Appleby's public-domain algorithm),
/// the hash Feast's Redis online store uses for field names
/// (`mmh3.hash(s, signed=False)` in Python).
package enum Murmur3 {
    /// The 32-bit hash of `bytes` with `seed` (Feast uses seed 0).
    package static func x86_32<Bytes: Collection>(_ bytes: Bytes, seed: UInt32 = 0) -> UInt32 where Bytes.Element == UInt8 {
        let c1: UInt32 = 0xcc9e_2d51
        let c2: UInt32 = 0x1b87_3593
        var h = seed
        var block: UInt32 = 0
        var filled = 0
        for byte in bytes {
            block |= UInt32(byte) << (8 * UInt32(filled))
            filled += 1
            if filled == 4 {
                h ^= mixBlock(block, c1, c2)
                h = rotateLeft(h, 13) &* 5 &+ 0xe654_6b64
                block = 0
                filled = 0
            }
        }
        if filled > 0 { h ^= mixBlock(block, c1, c2) }
        h ^= UInt32(truncatingIfNeeded: bytes.count)
        // Final avalanche (fmix32).
        h ^= h >> 16
        h = h &* 0x85eb_ca6b
        h ^= h >> 13
        h = h &* 0xc2b2_ae35
        h ^= h >> 16
        return h
    }

    @inline(__always)
    private static func mixBlock(_ k: UInt32, _ c1: UInt32, _ c2: UInt32) -> UInt32 {
        rotateLeft(k &* c1, 15) &* c2
    }

    @inline(__always)
    private static func rotateLeft(_ x: UInt32, _ r: UInt32) -> UInt32 { (x << r) | (x >> (32 - r)) }
}
