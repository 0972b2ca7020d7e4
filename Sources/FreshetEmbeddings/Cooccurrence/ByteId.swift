/// An id as its UTF-8 bytes: hashed and compared byte for byte, never with
/// String's Unicode canonical equivalence (two ids that differ in bytes are two
/// ids). Ordered lexicographically by bytes, the order every refresh sorts in,
/// so results do not depend on arrival order or on which instance computes them.
public struct ByteId: Hashable, Comparable, Sendable {
    public let bytes: [UInt8]

    public init(_ id: String) { bytes = Array(id.utf8) }
    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// The id as a String (for Redis keys and logs).
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    public static func < (a: ByteId, b: ByteId) -> Bool {
        a.bytes.lexicographicallyPrecedes(b.bytes)
    }
}

extension ByteId {
    /// FNV-1a over the bytes with a SplitMix finaliser: stable across processes
    /// (Swift's `hashValue` is seeded per process).
    public var stableHash: UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h ^= UInt64(b); h &*= 0x0000_0100_0000_01B3 }
        var z = h &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
