import XCTest
@testable import FreshetEmbeddings

final class TableTests: XCTestCase {
    func table(admitAfter: Int = 1, ttl: Int64 = 1000, dim: Int = 8, bias: BiasCoordinate = .none) -> EmbeddingTable {
        EmbeddingTable(EmbeddingTableConfig(name: "t", dimension: dim, admitAfter: admitAfter, ttlMs: ttl, seed: 9, bias: bias))
    }

    func testAdmissionAfterNSightings() {
        let t = table(admitAfter: 3)
        XCTAssertNil(t.observe("a", now: 0)); XCTAssertNil(t.vector(for: "a"))
        XCTAssertNil(t.observe("a", now: 1)); XCTAssertNil(t.vector(for: "a"))
        XCTAssertEqual(t.pendingSightings(of: "a"), 2)
        XCTAssertNotNil(t.observe("a", now: 2))
        XCTAssertEqual(t.vector(for: "a")?.count, 8)
        XCTAssertEqual(t.pendingAdmissionCount, 0)
    }

    func testCollisionless() {
        let t = table(dim: 4)
        var rows = Set<Int>()
        for i in 0..<5000 { rows.insert(t.observe("id\(i)", now: 0)!) }
        XCTAssertEqual(rows.count, 5000)
        XCTAssertEqual(t.count, 5000)
        for i in 0..<5000 { XCTAssertEqual(t.id(ofRow: t.rowIndex(for: "id\(i)")!), "id\(i)") }
    }

    func testDeterministicInit() {
        let a = table(), b = table()
        a.observe("x", now: 0); b.observe("y", now: 0); b.observe("x", now: 0)
        XCTAssertEqual(a.vector(for: "x"), b.vector(for: "x"))
        XCTAssertNotEqual(b.vector(for: "x"), b.vector(for: "y"))
        XCTAssertEqual(a.vector(for: "x"), a.initialVector(for: "x"))
        let v = a.vector(for: "x")!
        XCTAssertTrue(v.allSatisfy { abs($0) < 0.1 })
        XCTAssertEqual(table(bias: .constantOne).initialVector(for: "x").last, 1)
        XCTAssertEqual(table(bias: .learned).initialVector(for: "x").last, 0)
    }

    func testExpiryEvictionAndFreeListReuse() {
        let t = table(ttl: 1000)
        let ra = t.observe("a", now: 0)!
        let rb = t.observe("b", now: 0)!
        t.observe("b", now: 900)
        XCTAssertEqual(t.evictExpired(now: 1500), ["a"])
        XCTAssertNil(t.vector(for: "a"))
        XCTAssertNotNil(t.vector(for: "b"))
        let rc = t.observe("c", now: 1600)!
        XCTAssertEqual(rc, ra, "freed row is reused")
        XCTAssertNotEqual(rc, rb)
        XCTAssertEqual(t.allocatedRows, 2)
        XCTAssertEqual(t.vector(for: "c"), t.initialVector(for: "c"))
        XCTAssertEqual(t.evictExpired(now: 10_000).sorted(), ["b", "c"])
        XCTAssertEqual(t.count, 0)
    }

    func testPendingAdmissionsExpireToo() {
        let t = table(admitAfter: 2, ttl: 100)
        t.observe("a", now: 0)
        XCTAssertEqual(t.pendingAdmissionCount, 1)
        XCTAssertEqual(t.evictExpired(now: 500), [])
        XCTAssertEqual(t.pendingAdmissionCount, 0)
    }

    func testBlobIsLittleEndianFloat32() {
        let t = table(dim: 6)
        t.observe("a", now: 0)
        let v = t.vector(for: "a")!
        let blob = t.float32LittleEndianBlob(for: "a")!
        XCTAssertEqual(blob.count, 6 * 4)
        for k in 0..<6 {
            let bits = UInt32(blob[4 * k]) | UInt32(blob[4 * k + 1]) << 8 | UInt32(blob[4 * k + 2]) << 16 | UInt32(blob[4 * k + 3]) << 24
            XCTAssertEqual(Float(bitPattern: bits), v[k])
        }
        XCTAssertEqual(EmbeddingBlob.encode([1.0]), [0x00, 0x00, 0x80, 0x3F])
        XCTAssertEqual(EmbeddingBlob.decode(blob), v)
        XCTAssertNil(t.float32LittleEndianBlob(for: "missing"))
    }

    func testTouchedSet() {
        let t = table()
        t.observe("a", now: 0); t.observe("b", now: 0)
        XCTAssertEqual(Set(t.takeTouched()), ["a", "b"])
        XCTAssertEqual(t.takeTouched(), [])
        XCTAssertTrue(t.applyGradient(id: "b", gradient: [Float](repeating: 0.5, count: 8)))
        XCTAssertEqual(t.takeTouched(), ["b"])
        XCTAssertFalse(t.applyGradient(id: "zz", gradient: [Float](repeating: 0.5, count: 8)))
    }

    func testCheckpointRowRoundTrip() throws {
        let t = table()
        t.observe("a", now: 77)
        t.applyGradient(id: "a", gradient: (0..<8).map { Float($0) / 10 })
        let bytes = t.encodeRow("a")!
        XCTAssertEqual(bytes.count, 13 + 8 * 8)
        let u = table()
        try u.restoreRow("a", from: bytes)
        XCTAssertEqual(u.vector(for: "a"), t.vector(for: "a"))
        XCTAssertEqual(u.encodeRow("a"), bytes, "vector, accumulators and last-seen round-trip")
        // Same update on both afterwards gives the same row (accumulators restored).
        t.applyGradient(id: "a", gradient: [Float](repeating: 1, count: 8))
        u.applyGradient(id: "a", gradient: [Float](repeating: 1, count: 8))
        XCTAssertEqual(u.vector(for: "a"), t.vector(for: "a"))
        XCTAssertThrowsError(try table(dim: 4).restoreRow("a", from: bytes))
        XCTAssertThrowsError(try u.restoreRow("b", from: [1, 2, 3]))
    }

    func testConstantOneBiasNeverMoves() {
        let t = table(bias: .constantOne)
        t.observe("u", now: 0)
        for _ in 0..<10 { t.applyGradient(id: "u", gradient: [Float](repeating: 3, count: 8)) }
        XCTAssertEqual(t.vector(for: "u")!.last, 1)
    }
}
