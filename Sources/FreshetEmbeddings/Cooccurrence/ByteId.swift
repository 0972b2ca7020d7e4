import FreshetCore

/// An id as its UTF-8 bytes: hashed and compared byte for byte, never with
/// String's Unicode canonical equivalence (two ids that differ in bytes are two
/// ids). Ordered lexicographically by bytes, the order every refresh sorts in,
/// so results do not depend on arrival order or on which instance computes them.
package struct ByteId: Hashable, Comparable, Sendable {
    package let bytes: [UInt8]

    package init(_ id: String) { bytes = Array(id.utf8) }
    package init(bytes: [UInt8]) { self.bytes = bytes }

    /// The id as a String (for Redis keys and logs).
    package var string: String { String(decoding: bytes, as: UTF8.self) }

    package static func < (a: ByteId, b: ByteId) -> Bool {
        a.bytes.lexicographicallyPrecedes(b.bytes)
    }
}

extension ByteId {
    /// `StableHash` of the bytes: the same in every process and on every instance
    /// (Swift's `hashValue` is seeded per process).
    package var stableHash: UInt64 { StableHash.of(bytes) }
}
