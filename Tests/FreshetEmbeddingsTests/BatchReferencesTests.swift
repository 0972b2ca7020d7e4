@testable import FreshetEmbeddings
import XCTest

/// The batch references of the session protocol (PureSVD, EASE): their
/// factors against closed forms on small matrices. Their wiring into
/// `SessionEvaluator` is checked on the planted stream by
/// `CooccurrenceTests.testVectorsBeatPopularityOnPlantedData` (one replay for both).
final class BatchReferencesTests: XCTestCase {
    /// Three users with items {0, 1, 2}, one with {3, 4}, item 5 never
    /// positive: G = 3·J₃ ⊕ J₂ ⊕ 0, whose two largest eigenvalues are 9
    /// (the first block's all-ones direction) and 2 (the second's).
    func testPureSVDVectorsAreTheTopEigenvectorsOfTheGram() throws {
        let refs = try BatchReferences.fit(userItems: [[0, 1, 2], [2, 1, 0, 0], [1, 0, 2], [3, 4]], itemCount: 6,
                                           dimension: 2, easeLambda: 10)
        XCTAssertEqual(refs.fitted, [true, true, true, true, true, false])
        XCTAssertEqual(refs.dimension, 2)
        let v = refs.pureSVDVectors
        // Columns up to sign: (1,1,1,0,0,0)/√3 and (0,0,0,1,1,0)/√2, in some order.
        let columns = (0..<2).map { c in (0..<6).map { abs(v[$0 * 2 + c]) } }
        let first: [Float] = [1, 1, 1, 0, 0, 0].map { $0 / Float(3).squareRoot() }
        let second: [Float] = [0, 0, 0, 1, 1, 0].map { $0 / Float(2).squareRoot() }
        let expected = columns[0][0] > 0.1 ? [first, second] : [second, first]
        for (got, want) in zip(columns, expected) {
            for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-5) }
        }
        // A session of item 0 ranks items 1 and 2 first, 3 and 4 at 0.
        let q = try XCTUnwrap(refs.pureSVDSession([0]))
        let scores = (0..<6).map { j in (0..<2).reduce(Float(0)) { $0 + q[$1] * v[j * 2 + $1] } }
        XCTAssertEqual(scores[1], scores[0], accuracy: 1e-5)
        XCTAssertGreaterThan(scores[1], 0.3)
        XCTAssertEqual(scores[3], 0, accuracy: 1e-5)
        XCTAssertNil(refs.pureSVDSession([5]), "an item with no positive has no vector")
    }

    /// EASE's B against B = I − P·diag(1/diag P), P = (G + λI)⁻¹ computed
    /// here by Gauss–Jordan elimination, on overlapping users.
    func testEaseWeightsAreTheClosedFormOfThePaper() throws {
        let users = [[0, 1, 2], [1, 2, 3], [0, 3], [2, 3, 4], [4, 0], [1, 4]]
        let n = 5, lambda = 2.0
        let refs = try BatchReferences.fit(userItems: users, itemCount: n, dimension: 3, easeLambda: lambda)
        var g = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for items in users { for a in items { for b in items { g[a][b] += 1 } } }
        for i in 0..<n { g[i][i] += lambda }
        let p = Self.inverse(g)
        for i in 0..<n {
            for j in 0..<n {
                let want = i == j ? 0 : -p[i][j] / p[j][j]
                XCTAssertEqual(Double(refs.easeWeights[i * n + j]), want, accuracy: 1e-5, "B[\(i)][\(j)]")
            }
        }
        // A session's scores are the sum of its items' rows.
        let scores = try XCTUnwrap(refs.easeScores([0, 3]))
        for j in 0..<n {
            XCTAssertEqual(scores[j], refs.easeWeights[0 * n + j] + refs.easeWeights[3 * n + j], accuracy: 1e-6)
        }
    }

    func testTooManyItemsIsRefusedBeforeAllocating() {
        XCTAssertThrowsError(try BatchReferences.fit(userItems: [[0]], itemCount: BatchReferences.maxItems + 1,
                                                     dimension: 8, easeLambda: 100)) { error in
            XCTAssertEqual(error as? BatchReferences.FitError, .tooManyItems(BatchReferences.maxItems + 1))
        }
    }

    /// The inverse of a small symmetric positive definite matrix (Gauss–Jordan, no pivoting needed).
    static func inverse(_ a: [[Double]]) -> [[Double]] {
        let n = a.count
        var m = a.enumerated().map { i, row in row + (0..<n).map { $0 == i ? 1.0 : 0.0 } }
        for c in 0..<n {
            let pivot = m[c][c]
            m[c] = m[c].map { $0 / pivot }
            for r in 0..<n where r != c {
                let f = m[r][c]
                m[r] = zip(m[r], m[c]).map { $0 - f * $1 }
            }
        }
        return m.map { Array($0[n...]) }
    }
}
