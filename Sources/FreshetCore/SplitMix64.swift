/// The project's one seeded random generator: SplitMix64 (Steele, Lea, Flood
/// 2014), tiny and fast, with the same sequence on every platform and Swift
/// version (the standard library's generators are not seedable, or not stable).
///
/// Every seeded draw in Freshet comes from it: the synthetic and planted
/// workloads, the embeddings' initial vectors, negatives and random tie-breaks,
/// the evaluators' samples, the benchmarks' data. Changing the sequence changes
/// the embeddings' seed contract (a `seed` gives identical vectors on every
/// instance) and every figure measured on a generated stream.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    @inline(__always)
    package mutating func next() -> UInt64 {
        state &+= Self.gamma
        return Self.mix(state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    @inline(__always)
    package mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in `0..<bound` (bound > 0); Lemire's multiply-shift, bias
    /// negligible for the bounds used here (far below 2^32).
    @inline(__always)
    package mutating func nextInt(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Uniform in `range`.
    package mutating func inRange(_ range: ClosedRange<Int64>) -> Int64 {
        let width = UInt64(bitPattern: range.upperBound &- range.lowerBound) &+ 1
        if width == 0 { return Int64(bitPattern: next()) }
        return range.lowerBound &+ Int64(bitPattern: next().multipliedFullWidth(by: width).high)
    }

    /// Standard normal (Box-Muller; two uniforms a draw).
    package mutating func nextGaussian() -> Double {
        let u1 = max(nextUnit(), 1e-300)
        let u2 = nextUnit()
        return (-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2)
    }

    /// The golden-ratio increment of the state.
    @usableFromInline static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// SplitMix64's output function: a bijective 64-bit finaliser (also used
    /// to spread stable hashes, `StableHash`).
    @inline(__always)
    package static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A 64-bit hash of bytes that is the same in every process and on every
/// instance (FNV-1a, then SplitMix64's finaliser). Swift's `hashValue` is
/// seeded per process, so it must never be used for anything that has to
/// survive a restart or agree across instances.
package enum StableHash {
    @inline(__always)
    package static func of(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for b in bytes {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01B3
        }
        return SplitMix64.mix(h &+ SplitMix64.gamma)
    }
}
