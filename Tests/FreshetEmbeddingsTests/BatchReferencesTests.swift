@testable import FreshetEmbeddings
import XCTest

/// The batch references of the session protocol (PureSVD, EASE): their
/// factors against closed forms on small matrices. Their wiring into
/// `SessionEvaluator` is checked on the planted stream by
/// `CooccurrenceTests.testVectorsBeatPopularityOnPlantedData` (one replay for both).
final class BatchReferencesTests: XCTestCase {
    /// Three users with items {0, 1, 2}, one with {3, 4}, item 5 never
    /// positive: G = 3·J₃ ⊕ J₂ over the fitted items 0-4, whose two largest
    /// eigenvalues are 9 (the first block's all-ones direction) and 2 (the second's).
    func testPureSVDVectorsAreTheTopEigenvectorsOfTheGram() throws {
        let refs = try BatchReferences.fit(userItems: [[0, 1, 2], [2, 1, 0, 0], [1, 0, 2], [3, 4]], itemCount: 6,
                                           dimension: 2, easeLambda: 10)
        XCTAssertEqual(refs.fittedItems, [0, 1, 2, 3, 4])
        XCTAssertFalse(refs.isFitted(5))
        XCTAssertEqual(refs.dimension, 2)
        XCTAssertEqual(refs.failures, [])
        let v = try XCTUnwrap(refs.pureSVDVectors)
        // Columns up to sign: (1,1,1,0,0)/√3 and (0,0,0,1,1)/√2, in some order.
        let columns: [[Float]] = (0..<2).map { c in (0..<5).map { abs(v[$0 * 2 + c]) } }
        let third = Float(3).squareRoot(), half = Float(2).squareRoot()
        let first: [Float] = [1 / third, 1 / third, 1 / third, 0, 0]
        let second: [Float] = [0, 0, 0, 1 / half, 1 / half]
        let expected = columns[0][0] > 0.1 ? [first, second] : [second, first]
        for (got, want) in zip(columns, expected) {
            for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-5) }
        }
        // A session of item 0 scores items 1 and 2 like item 0, items 3 and 4 at 0, item 5 (not fitted) 0.
        let scores = try XCTUnwrap(refs.pureSVDScores([0]))
        XCTAssertEqual(scores.count, 6)
        XCTAssertEqual(scores[1], scores[0], accuracy: 1e-5)
        XCTAssertGreaterThan(scores[1], 0.3)
        XCTAssertEqual(scores[3], 0, accuracy: 1e-5)
        XCTAssertEqual(scores[5], 0)
        XCTAssertNil(refs.pureSVDSession([5]), "an item with no positive has no vector")
    }

    /// EASE's B against B = I − P·diag(1/diag P), P = (G + λI)⁻¹ computed
    /// here by Gauss–Jordan elimination, on overlapping users.
    func testEaseWeightsAreTheClosedFormOfThePaper() throws {
        let users = [[0, 1, 2], [1, 2, 3], [0, 3], [2, 3, 4], [4, 0], [1, 4]]
        let n = 5, lambda = 2.0
        let refs = try BatchReferences.fit(userItems: users, itemCount: n, dimension: 3, easeLambda: lambda)
        let weights = try XCTUnwrap(refs.easeWeights)
        var g = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for items in users { for a in items { for b in items { g[a][b] += 1 } } }
        for i in 0..<n { g[i][i] += lambda }
        let p = Self.inverse(g)
        for i in 0..<n {
            for j in 0..<n {
                let want = i == j ? 0 : -p[i][j] / p[j][j]
                XCTAssertEqual(Double(weights[i * n + j]), want, accuracy: 1e-5, "B[\(i)][\(j)]")
            }
        }
        // A session's scores are the sum of its items' rows.
        let scores = try XCTUnwrap(refs.easeScores([0, 3]))
        for j in 0..<n {
            XCTAssertEqual(scores[j], weights[0 * n + j] + weights[3 * n + j], accuracy: 1e-6)
        }
    }

    /// The size limit counts only items with a positive: a catalogue of
    /// skipped items beyond it still fits on the few with positives.
    func testTheLimitCountsOnlyItemsWithAPositive() throws {
        let many = BatchReferences.maxItems + 500
        let refs = try BatchReferences.fit(userItems: [[many - 1, 3], [3, 7]], itemCount: many, dimension: 8, easeLambda: 1)
        XCTAssertEqual(refs.fittedItems, [3, 7, many - 1])
        XCTAssertEqual(refs.dimension, 3, "k capped at the fitted items")
        XCTAssertEqual(try XCTUnwrap(refs.easeScores([3])).count, many)
        XCTAssertThrowsError(try BatchReferences.fit(userItems: [Array(0...BatchReferences.maxItems)], itemCount: many,
                                                     dimension: 8, easeLambda: 100)) { error in
            XCTAssertEqual(error as? BatchReferences.FitError, .tooManyItems(BatchReferences.maxItems + 1))
        }
    }

    /// EASE failing (λ too small for a singular G) leaves PureSVD, and says what to change.
    func testAFailedEaseFitLeavesPureSVD() throws {
        let same = [0, 1, 2, 3, 4, 5]
        let refs = try BatchReferences.fit(userItems: [same, same], itemCount: 6, dimension: 2, easeLambda: 1e-300)
        XCTAssertNil(refs.easeWeights)
        XCTAssertNil(refs.easeScores([0]))
        XCTAssertNotNil(refs.pureSVDVectors)
        XCTAssertNotNil(refs.pureSVDScores([0]))
        XCTAssertEqual(refs.failures.count, 1)
        XCTAssertTrue(refs.failures[0].contains("dpotrf") && refs.failures[0].contains("--ease-lambda"), refs.failures[0])
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
