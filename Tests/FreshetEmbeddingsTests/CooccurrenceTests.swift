import FreshetWorkload
import XCTest
@testable import FreshetEmbeddings

/// Rows, the spectral refresh and the fold-in on small matrices whose
/// eigenvectors are known; the learning test on planted data.
final class CooccurrenceTests: XCTestCase {
    /// Cliques: every member co-occurs with every other member `count` times,
    /// every degree `degree`. A clique of m members with A_ij = v has top
    /// eigenvalue (m - 1) v with eigenvector 1/√m on its members.
    static func cliques(_ sizes: [Int], counts: [UInt32], degree: Int64) -> (CooccurrenceSnapshot, [[ByteId]]) {
        var builder = CooccurrenceSnapshot.Builder()
        var members: [[ByteId]] = []
        for (c, size) in sizes.enumerated() {
            let ids = (0..<size).map { ByteId("c\(c)-\($0)") }
            members.append(ids)
            for a in ids { builder.addRow(item: a, degree: degree, entries: ids.filter { $0 != a }.map { ($0, counts[c]) }) }
        }
        return (builder.snapshot, members)
    }

    func testRowsCountPruneAndEvict() {
        var config = CooccurrenceConfig(dimension: 4)
        config.rowCapacity = 4
        config.rowKeep = 2
        config.admitAfter = 2
        config.ttlMs = 100
        let rows = CooccurrenceRows(config: config)
        let i = ByteId("i")
        XCTAssertFalse(rows.observePositive(item: i, history: [ByteId("a")], ts: 0), "admitted on the 2nd sighting")
        XCTAssertTrue(rows.observePositive(item: i, history: [ByteId("a"), ByteId("b"), ByteId("a"), i], ts: 1))
        XCTAssertEqual(rows.degree(of: i), 1)
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: rows.row(of: i)!.map { ($0.0.string, $0.1) }), ["a": 1, "b": 1],
                       "repeats in the history and the item itself do not count")
        rows.observePositive(item: i, history: [ByteId("b"), ByteId("c")], ts: 2)
        rows.observePositive(item: i, history: [ByteId("d"), ByteId("e")], ts: 3)
        // 5 entries > capacity 4: pruned to the 2 largest (b: 2, then a/c/d/e at 1, ties by id bytes: a).
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: rows.row(of: i)!.map { ($0.0.string, $0.1) }), ["b": 2, "a": 1])
        XCTAssertEqual(rows.entryCount, 2)
        XCTAssertEqual(rows.evictExpired(now: 103), [], "last positive at 3: not expired yet")
        XCTAssertEqual(rows.evictExpired(now: 104), [i], "no positive for more than the TTL")
        XCTAssertNil(rows.row(of: i))
    }

    func testRowCodecRoundTrips() throws {
        let entries: [(ByteId, UInt32)] = [(ByteId("a"), 3), (ByteId("é"), 70_000), (ByteId(""), 1)]
        let bytes = CooccurrenceSnapshot.encodeRow(degree: 12, lastSeen: -5, entries: entries)
        let row = try CooccurrenceSnapshot.decodeRow(bytes)
        XCTAssertEqual(row.degree, 12)
        XCTAssertEqual(row.lastSeen, -5)
        XCTAssertEqual(row.entries.map(\.0), entries.map(\.0))
        XCTAssertEqual(row.entries.map(\.1), entries.map(\.1))
        XCTAssertThrowsError(try CooccurrenceSnapshot.decodeRow(Array(bytes.dropLast())))
    }

    func testNormalisedMatrixIsSymmetricAndDegreeScaled() {
        var builder = CooccurrenceSnapshot.Builder()
        builder.addRow(item: ByteId("b"), degree: 16, entries: [(ByteId("a"), UInt32(4)), (ByteId("zz-no-row"), UInt32(9))])
        builder.addRow(item: ByteId("a"), degree: 1, entries: [(ByteId("b"), UInt32(2))])
        let m = SymmetricSparseMatrix(builder.snapshot)
        XCTAssertEqual(m.items, [ByteId("a"), ByteId("b")], "sorted by id bytes; neighbours without a row dropped")
        // S_ab = (2 + 4) / 2 = 3; A_ab = 3 / (1 · 16)^(1/4) = 1.5.
        XCTAssertEqual(m.dense(), [0, 1.5, 1.5, 0])
    }

    func testDenseRefreshFindsCliqueEigenvectors() {
        // Clique sizes 3 and 4, counts 2 and 1, degree 16: v = count / 4.
        let (snapshot, members) = Self.cliques([3, 4], counts: [2, 1], degree: 16)
        let set = SpectralRefresh.refresh(SymmetricSparseMatrix(snapshot), dimension: 2, previous: nil, iterations: 1, seed: 1)
        XCTAssertEqual(set.eigenvalues[0], 1.0, accuracy: 1e-5, "clique 0: (3 - 1) · 0.5")
        XCTAssertEqual(set.eigenvalues[1], 0.75, accuracy: 1e-5, "clique 1: (4 - 1) · 0.25")
        for (c, ids) in members.enumerated() {
            let scale = Float(Double(set.eigenvalues[c]).squareRoot().squareRoot()) / Float(Double(ids.count).squareRoot())
            for id in ids {
                let v = set.vector(id)!
                XCTAssertEqual(v[c], scale, accuracy: 1e-5, "u = 1/√m on the members, scaled by λ^(1/4), sign fixed positive")
                XCTAssertEqual(v[1 - c], 0, accuracy: 1e-5)
            }
        }
    }

    func testSubspaceRefreshMatchesKnownEigenvectorsAndWarmStarts() {
        // 7 cliques of 100 (700 items > the dense limit): distinct weights, so
        // the top 4 eigenvectors are the indicators of the 4 heaviest cliques.
        let counts: [UInt32] = [7, 6, 5, 4, 3, 2, 1]
        let (snapshot, members) = Self.cliques(Array(repeating: 100, count: 7), counts: counts, degree: 1)
        let matrix = SymmetricSparseMatrix(snapshot)
        XCTAssertGreaterThan(matrix.dimension, SpectralRefresh.denseLimit)
        let cold = SpectralRefresh.refresh(matrix, dimension: 4, previous: nil, iterations: 30, seed: 3)
        for c in 0..<4 {
            XCTAssertEqual(cold.eigenvalues[c], Float(99 * counts[c]), accuracy: 1e-2)
            let scale = Float(Double(cold.eigenvalues[c]).squareRoot().squareRoot()) / 10
            for id in members[c] { XCTAssertEqual(cold.vector(id)![c], scale, accuracy: 1e-3) }
            for id in members[6] { XCTAssertEqual(cold.vector(id)![c], 0, accuracy: 1e-3) }
        }
        // Warm start from the converged basis: two iterations keep it.
        let warm = SpectralRefresh.refresh(matrix, dimension: 4, previous: cold, iterations: 2, seed: 3)
        XCTAssertEqual(warm.version, cold.version + 1)
        for id in members[0] { XCTAssertEqual(warm.vector(id)![0], cold.vector(id)![0], accuracy: 1e-3) }
    }

    func testARefreshSplitIntoRowPartsFindsTheKnownEigenvectorsOnAnyThreadCount() {
        // 90 cliques of 100 (9,000 items: the orthonormalisation and the start
        // block are split into two row parts, at the 4,500th id in byte order,
        // "c49-99"); the 4 heaviest, of distinct weights, lie on both sides.
        let heaviest: [(clique: Int, count: UInt32)] = [(89, 40), (0, 30), (60, 20), (30, 10)]
        var counts = [UInt32](repeating: 1, count: 90)
        for (clique, count) in heaviest { counts[clique] = count }
        let (snapshot, members) = Self.cliques(Array(repeating: 100, count: 90), counts: counts, degree: 1)
        let matrix = SymmetricSparseMatrix(snapshot)
        XCTAssertEqual(SpectralRefresh.rowParts(rows: matrix.dimension).count - 1, 2)
        let one = SpectralRefresh.refresh(matrix, dimension: 4, previous: nil, iterations: 30, seed: 3, threads: 1)
        let two = SpectralRefresh.refresh(matrix, dimension: 4, previous: nil, iterations: 30, seed: 3, threads: 2)
        XCTAssertEqual(one.vectors.map(\.bitPattern), two.vectors.map(\.bitPattern))
        for (c, heavy) in heaviest.enumerated() {
            XCTAssertEqual(two.eigenvalues[c], Float(99 * heavy.count), accuracy: 1e-2)
            let scale = Float(Double(two.eigenvalues[c]).squareRoot().squareRoot()) / 10
            for id in members[heavy.clique] { XCTAssertEqual(two.vector(id)![c], scale, accuracy: 1e-3) }
            for id in members[1] + members[88] { XCTAssertEqual(two.vector(id)![c], 0, accuracy: 1e-3) }
        }
        // The basis is orthonormal over both parts.
        for a in 0..<4 {
            for b in 0..<4 {
                var dot: Float = 0
                for i in 0..<matrix.dimension { dot += two.basis[i * 4 + a] * two.basis[i * 4 + b] }
                XCTAssertEqual(dot, a == b ? 1 : 0, accuracy: 1e-3, "columns \(a), \(b)")
            }
        }
    }

    /// The iterations in between take one Cholesky-QR pass, the last two:
    /// on a block of columns of norms 100 times apart (cliques of weights
    /// 100, 10 and 1; each clique also has the eigenvalue −weight on the
    /// vectors that sum to zero on it, so five of the eight columns end up
    /// in those), the refresh finds the cliques' eigenpairs, no positive
    /// weight beyond them, and a basis orthonormal to working precision.
    func testAnIllConditionedRefreshKeepsAnOrthonormalBasis() {
        let counts: [UInt32] = [100, 10, 1]
        let (snapshot, members) = Self.cliques([200, 200, 200], counts: counts, degree: 1)
        let matrix = SymmetricSparseMatrix(snapshot)
        let k = 8
        for iterations in [15, 30] {
            let set = SpectralRefresh.refresh(matrix, dimension: k, previous: nil, iterations: iterations, seed: 7)
            for c in 0..<3 {
                XCTAssertEqual(set.eigenvalues[c] / Float(199 * counts[c]), 1, accuracy: 1e-4, "clique \(c), \(iterations) iterations")
                let scale = Float(Double(set.eigenvalues[c]).squareRoot().squareRoot()) / Float(200.0.squareRoot())
                for id in members[c] { XCTAssertEqual(set.vector(id)![c], scale, accuracy: 1e-3) }
            }
            for c in 3..<k { XCTAssertLessThan(set.eigenvalues[c], 1e-2, "no positive weight beyond the cliques") }
            var worst: Float = 0
            for a in 0..<k {
                for b in 0..<k {
                    var dot: Float = 0
                    for i in 0..<matrix.dimension { dot += set.basis[i * k + a] * set.basis[i * k + b] }
                    worst = max(worst, abs(dot - (a == b ? 1 : 0)))
                }
            }
            XCTAssertLessThan(worst, 1e-5, "orthonormal columns after \(iterations) iterations")
        }
    }

    func testFoldInAppliesTheEigenvectorIdentity() {
        let (snapshot, members) = Self.cliques([3, 4], counts: [2, 1], degree: 16)
        var set = SpectralRefresh.refresh(SymmetricSparseMatrix(snapshot), dimension: 2, previous: nil, iterations: 1, seed: 1)
        // A new item co-occurring 2 times with each member of clique 0, degree 16:
        // x_0 = Σ_j A_xj x_j0 / λ_0 = 3 · (2/4) · (λ_0^(1/4)/√3) / λ_0; x_1 = 0.
        let x = set.foldIn(ByteId("new"), degree: 16, row: members[0].map { ($0, 2) })!
        let lambda = Double(set.eigenvalues[0])
        XCTAssertEqual(Double(x[0]), 3 * 0.5 * (pow(lambda, 0.25) / 3.0.squareRoot()) / lambda, accuracy: 1e-5)
        XCTAssertEqual(x[1], 0, accuracy: 1e-6)
        XCTAssertEqual(set.vector(ByteId("new")), x)
        XCTAssertNil(set.foldIn(ByteId("lonely"), degree: 1, row: [(ByteId("unknown"), 1)]), "no neighbour with a vector")
    }

    func testRefreshIsIndependentOfRowOrder() {
        let (snapshot, _) = Self.cliques([5, 6, 7], counts: [3, 2, 1], degree: 4)
        var reversed = CooccurrenceSnapshot.Builder()
        var rows: [(ByteId, Int64, [(ByteId, UInt32)])] = []
        snapshot.forEachRow { rows.append(($0, $1, $2)) }
        for (id, degree, entries) in rows.reversed() { reversed.addRow(item: id, degree: degree, entries: entries.reversed()) }
        let a = SpectralRefresh.refresh(SymmetricSparseMatrix(snapshot), dimension: 3, previous: nil, iterations: 4, seed: 5)
        let b = SpectralRefresh.refresh(SymmetricSparseMatrix(reversed.snapshot), dimension: 3, previous: nil, iterations: 4, seed: 5)
        XCTAssertEqual(a.items, b.items)
        XCTAssertEqual(a.vectors, b.vectors)
    }

    /// Learning test: on planted clusters the published-style vectors (session
    /// retrieval, frozen at 80%) must beat fresh popularity by a wide margin,
    /// and the prequential protocol by 1.5x.
    func testVectorsBeatPopularityOnPlantedData() {
        let world = PlantedPreferences(PlantedConfig(users: 600, items: 200, clusters: 5, events: 15_000, seed: 3))
        let model = CooccurrenceModel(config: CooccurrenceConfig(dimension: 16), refreshEvery: 2_000)
        var evaluator = SessionEvaluator()
        evaluator.batchReferences = true
        evaluator.easeLambda = 100
        let (prequential, session) = evaluator.evaluate(world.inputEvents(), model: model)
        XCTAssertGreaterThan(session.model.count, 1_000)
        XCTAssertGreaterThanOrEqual(session.recallLift, 1.9, "session retrieval Recall@10 lift over fresh popularity")
        XCTAssertGreaterThan(session.model.hr10, session.popularity.hr10 + 0.15, "HR@10 well above popularity's")
        XCTAssertGreaterThanOrEqual(prequential.model.full.recall10, 1.5 * prequential.popularity.full.recall10)

        // The batch references (fit on the positives before the cut) learn
        // the clusters too, scored on exactly the same positives.
        XCTAssertNil(session.batchSkipped)
        for (name, reference) in [("PureSVD", session.pureSVD), ("EASE", session.ease)] {
            XCTAssertEqual(reference?.count, session.model.count, name)
            XCTAssertGreaterThan(reference?.hr10 ?? 0, session.popularity.hr10 + 0.15, "\(name) learns the clusters")
            XCTAssertGreaterThanOrEqual((reference?.recall10 ?? 0) / session.popularity.recall10, 1.9, name)
        }
        let json = session.jsonString()
        XCTAssertTrue(json.contains("\"pure_svd\": {\"hr10\": "), json)
        XCTAssertTrue(json.contains("\"ease_lambda\": 100.0, \"ease_recall10_lift\": "), json)

        // The vectors a bounded run publishes: its final refresh, cold from
        // the seeded basis (the topology's default iterations).
        var final = SessionEvaluator()
        final.cutColdIterations = 12
        let (_, finalSession) = final.evaluate(world.inputEvents(),
                                               model: CooccurrenceModel(config: CooccurrenceConfig(dimension: 16), refreshEvery: 2_000))
        XCTAssertGreaterThanOrEqual(finalSession.recallLift, 1.9, "the final refresh's vectors: Recall@10 lift")
        XCTAssertGreaterThan(finalSession.model.hr10, finalSession.popularity.hr10 + 0.15)
    }

    /// A refresh with `coldIterations` (what the evaluation's cut does for a
    /// bounded run's final refresh) starts from the seeded basis, not from
    /// the model's last result: the same vectors as a cold refresh of the
    /// same rows, whatever the refreshes before it.
    func testAColdRefreshOfTheModelIgnoresItsEarlierResults() {
        let world = PlantedPreferences(PlantedConfig(users: 300, items: 600, clusters: 6, events: 8_000, seed: 5))
        let model = CooccurrenceModel(config: CooccurrenceConfig(dimension: 8), refreshEvery: 1_000)
        for event in world.inputEvents() {
            guard case .interaction(let e) = event else { continue }
            model.observe(user: e.userId, item: e.itemId, positive: e.action.isPositive, ts: e.ts)
        }
        XCTAssertGreaterThan(model.refreshes, 2, "warm refreshes ran before")
        let cold = SpectralRefresh.refresh(SymmetricSparseMatrix(model.rows.snapshot()), dimension: 8, previous: nil,
                                           iterations: 3, seed: model.config.seed)
        let version = model.vectors.version
        model.refresh(coldIterations: 3)
        XCTAssertEqual(model.vectors.items, cold.items)
        XCTAssertEqual(model.vectors.vectors, cold.vectors)
        XCTAssertEqual(model.vectors.version, version + 1)
        model.refresh()
        XCTAssertNotEqual(model.vectors.vectors, cold.vectors, "a warm refresh after it moves on from it")
    }
}
