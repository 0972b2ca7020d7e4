import FreshetCore
import XCTest
@testable import FreshetEmbeddings

/// `SymmetricSparseMatrix.multiply`: the SIMD kernel (k = 64) and the split
/// over threads give exactly the bytes of the plain scalar product, so the
/// refresh's result does not depend on them.
final class SparseMultiplyTests: XCTestCase {
    /// A random snapshot of `items` rows with up to 40 entries each (some neighbours without a row).
    static func randomMatrix(items: Int, seed: UInt64) -> SymmetricSparseMatrix {
        var rng = SplitMix64(seed: seed)
        var builder = CooccurrenceSnapshot.Builder()
        for i in 0..<items {
            let n = Int(rng.next() % 40)
            var entries: [(ByteId, UInt32)] = []
            for _ in 0..<n {
                let j = Int(rng.next() % UInt64(items + items / 10))
                entries.append((ByteId("i\(j)"), UInt32(1 + rng.next() % 9)))
            }
            builder.addRow(item: ByteId("i\(i)"), degree: Int64(1 + rng.next() % 50), entries: entries)
        }
        return SymmetricSparseMatrix(builder.snapshot)
    }

    /// The product as the scalar loop computes it (the reference).
    static func reference(_ m: SymmetricSparseMatrix, _ x: [Float], k: Int) -> [Float] {
        var y = [Float](repeating: 0, count: m.dimension * k)
        for i in 0..<m.dimension {
            for e in m.rowStart[i]..<m.rowStart[i + 1] {
                let a = m.values[e]
                let j = Int(m.columns[e])
                for c in 0..<k { y[i * k + c] += a * x[j * k + c] }
            }
        }
        return y
    }

    func testKernelsAndThreadsGiveTheScalarProductBitForBit() {
        let m = Self.randomMatrix(items: 5_000, seed: 7)
        var rng = SplitMix64(seed: 9)
        for k in [64, 5] {
            let x = (0..<(m.dimension * k)).map { _ in Float(rng.nextGaussian()) }
            let expected = Self.reference(m, x, k: k).map(\.bitPattern)
            for threads in [1, 2, 3] {
                XCTAssertEqual(m.multiply(x, k: k, threads: threads).map(\.bitPattern), expected, "k \(k), \(threads) thread(s)")
            }
        }
    }

    func testARefreshOnTwoThreadsEqualsOneThread() {
        // Enough items that the orthonormalisation and the start block are split too.
        let m = Self.randomMatrix(items: 9_000, seed: 3)
        XCTAssertGreaterThan(SpectralRefresh.rowParts(rows: m.dimension).count - 1, 1)
        let one = SpectralRefresh.refresh(m, dimension: 64, previous: nil, iterations: 4, seed: 42, threads: 1)
        let two = SpectralRefresh.refresh(m, dimension: 64, previous: nil, iterations: 4, seed: 42, threads: 2)
        XCTAssertEqual(one.vectors.map(\.bitPattern), two.vectors.map(\.bitPattern))
        XCTAssertEqual(one.eigenvalues, two.eigenvalues)
    }
}
