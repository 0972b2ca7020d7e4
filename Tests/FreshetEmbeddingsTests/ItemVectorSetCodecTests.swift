import FreshetCore
import XCTest
@testable import FreshetEmbeddings

/// The byte form the refresh leader publishes and every other instance loads.
final class ItemVectorSetCodecTests: XCTestCase {
    func testRoundTripKeepsEveryVectorBasisRowDegreeAndEigenvalue() throws {
        let (snapshot, members) = CooccurrenceTests.cliques([3, 4, 5], counts: [3, 2, 1], degree: 9)
        var set = SpectralRefresh.refresh(SymmetricSparseMatrix(snapshot), dimension: 3, previous: nil, iterations: 6,
                                          seed: 7, version: 12)
        // A fold-in is not part of the refresh result: it must not travel.
        XCTAssertNotNil(set.foldIn(ByteId("folded"), degree: 9, row: members[0].map { ($0, 2) }))
        // Tiny chunks: every item its own chunk, so chunk boundaries are exercised.
        let (header, chunks) = set.encoded(maxChunkBytes: 8)
        XCTAssertEqual(chunks.count, 12)
        XCTAssertEqual(try ItemVectorSet.chunkCount(header: header), 12)
        let back = try ItemVectorSet.decode(header: header, chunks: chunks)
        XCTAssertEqual(back.version, 12)
        XCTAssertEqual(back.dimension, 3)
        XCTAssertEqual(back.items, Array(set.items.prefix(set.refreshed)))
        XCTAssertEqual(back.vectors, Array(set.vectors.prefix(set.refreshed * 3)))
        XCTAssertEqual(back.basis, Array(set.basis.prefix(set.refreshed * 3)))
        XCTAssertEqual(back.degrees, Array(set.degrees.prefix(set.refreshed)))
        XCTAssertEqual(back.eigenvalues, set.eigenvalues)
        XCTAssertNil(back.vector(ByteId("folded")))
        // The loaded set folds new items in exactly as the original does.
        var original = SpectralRefresh.refresh(SymmetricSparseMatrix(snapshot), dimension: 3, previous: nil, iterations: 6,
                                               seed: 7, version: 12)
        var loaded = back
        let row = members[1].map { ($0, UInt32(1)) }
        XCTAssertEqual(loaded.foldIn(ByteId("new"), degree: 4, row: row), original.foldIn(ByteId("new"), degree: 4, row: row))

        // One default-sized chunk holds a small set.
        XCTAssertEqual(set.encoded().chunks.count, 1)
        XCTAssertEqual(try ItemVectorSet.decode(header: set.encoded().header, chunks: set.encoded().chunks).vectors,
                       back.vectors)
    }

    func testDecodingRefusesDamagedInput() throws {
        let (snapshot, _) = CooccurrenceTests.cliques([3, 3], counts: [1, 1], degree: 4)
        let set = SpectralRefresh.refresh(SymmetricSparseMatrix(snapshot), dimension: 2, previous: nil, iterations: 3, seed: 1)
        let (header, chunks) = set.encoded(maxChunkBytes: 20)
        XCTAssertGreaterThan(chunks.count, 1)
        XCTAssertThrowsError(try ItemVectorSet.decode(header: [0x46, 0x56, 0x02] + header.dropFirst(3), chunks: chunks))
        XCTAssertThrowsError(try ItemVectorSet.decode(header: header, chunks: Array(chunks.dropLast())), "a missing chunk")
        XCTAssertThrowsError(try ItemVectorSet.decode(header: header, chunks: chunks.dropLast() + [Array(chunks.last!.dropLast())]),
                             "a truncated chunk")
        XCTAssertThrowsError(try ItemVectorSet.decode(header: header, chunks: chunks.dropLast() + [chunks[0]]),
                             "a repeated item")
        XCTAssertThrowsError(try ItemVectorSet.decode(header: Array(header.dropLast()), chunks: chunks), "a truncated header")
    }
}
