import FreshetCore

/// An order-independent fingerprint of the examples a run wrote: their count,
/// and the wrapping sum and the xor of a 64-bit hash of each example's key and
/// encoded bytes. Two runs (or two builds) that write the same multiset of
/// examples print the same digest whatever order the tasks wrote them in;
/// what `freshet bench tasks` prints so that a change to the dataflow can be
/// checked against the build before it without keeping every example.
package struct ExampleDigest: Sendable, Equatable, CustomStringConvertible {
    package private(set) var count = 0
    package private(set) var sum: UInt64 = 0
    package private(set) var xor: UInt64 = 0

    package init() {}

    package mutating func add(key: String, value: UnsafeRawBufferPointer) {
        // FNV-1a over the key, a separator and the value, then SplitMix64's
        // finalizer so that the sum's low bits mix.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ 0xff) &* 0x100_0000_01b3
        for byte in value { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = SplitMix64.mix(hash)
        count += 1
        sum &+= hash
        xor ^= hash
    }

    package var description: String {
        "\(count) examples, sum \(String(sum, radix: 16)) xor \(String(xor, radix: 16))"
    }
}
