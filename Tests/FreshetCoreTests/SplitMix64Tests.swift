import XCTest
import FreshetCore

/// The one seeded generator and stable hash: their outputs are a contract
/// (seeded streams, the embeddings' `seed` giving identical vectors on every
/// instance), pinned here against the reference algorithm.
final class SplitMix64Tests: XCTestCase {
    func testReferenceSequence() {
        var rng = SplitMix64(seed: 0)
        XCTAssertEqual(rng.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(rng.next(), 0x6E78_9E6A_A1B9_65F4)
        XCTAssertEqual(rng.next(), 0x06C4_5D18_8009_454F)
    }

    func testBoundedDrawsAreMultiplyShiftOfTheSameSequence() {
        var rng = SplitMix64(seed: 42)
        XCTAssertEqual((0..<5).map { _ in rng.nextInt(10) }, [7, 1, 2, 3, 0])
        var a = SplitMix64(seed: 9), b = SplitMix64(seed: 9)
        for _ in 0..<1000 {
            let u = a.nextUnit()
            XCTAssertEqual(u, Double(b.next() >> 11) / 9_007_199_254_740_992.0)
            XCTAssertTrue(u >= 0 && u < 1)
        }
        var c = SplitMix64(seed: 3)
        for _ in 0..<1000 { XCTAssertTrue((-5...5).contains(c.inRange(-5...5))) }
    }

    func testStableHashIsFNV1aThenTheSplitMixFinaliser() {
        XCTAssertEqual(StableHash.of([UInt8]()), 0xC381_7C01_6BA4_FF30)
        XCTAssertEqual(StableHash.of("i42".utf8), 0x9536_25C9_01E2_65D6)
        XCTAssertEqual(StableHash.of("café".utf8, seed: 7), 0x0858_1A86_972E_A043)
    }
}
