import XCTest
@testable import FreshetEmbeddings

final class TrainerTests: XCTestCase {
    func pos(_ u: String, _ i: String, _ ts: Int64 = 0) -> TrainingExample {
        TrainingExample(label: .positive, userId: u, itemId: i, action: .click, eventTs: ts)
    }

    func testLossDecreasesOnToyProblem() {
        for loss in EmbeddingLoss.allCases {
            var c = EmbeddingTrainerConfig(loss: loss, dimension: 8, seed: 3)
            c.negatives = 2
            let t = EmbeddingTrainer(config: c)
            let data = [("u1", "a"), ("u1", "b"), ("u2", "c"), ("u2", "d"), ("u3", "a"), ("u4", "c")]
            var epochLoss: [Float] = []
            for epoch in 0..<60 {
                var l: Float = 0
                for (u, i) in data { l += t.train(pos(u, i, Int64(epoch))) ?? 0 }
                epochLoss.append(l)
            }
            let early = epochLoss[1..<6].reduce(0, +), late = epochLoss[55..<60].reduce(0, +)
            XCTAssertLessThan(late, early * 0.7, "\(loss): \(early) -> \(late)")
            XCTAssertGreaterThan(t.score(userId: "u1", itemId: "b")!, t.score(userId: "u1", itemId: "c")!, "\(loss)")
            XCTAssertGreaterThan(t.score(userId: "u2", itemId: "d")!, t.score(userId: "u2", itemId: "a")!, "\(loss)")
        }
    }

    func testLogFrequencyCorrectionSign() {
        let t = EmbeddingTrainer(config: EmbeddingTrainerConfig(loss: .bpr, dimension: 4))
        for k in 0..<30 { t.train(pos("u\(k)", "popular")) }
        t.train(pos("v", "rare"))
        for k in 0..<3 { t.train(pos("w\(k)", "mid\(k)")) }
        // N = 5 items, total 34: N·Q(popular) = 5·30/34 > 1, N·Q(rare) = 5/34 < 1.
        XCTAssertEqual(t.itemsSeen, 5)
        let cp = t.logQCorrection(itemId: "popular")!, cr = t.logQCorrection(itemId: "rare")!
        XCTAssertGreaterThan(cp, 0, "popular (over-sampled) negatives get their logit lowered")
        XCTAssertLessThan(cr, 0, "rare (under-sampled) negatives get their logit raised")
        XCTAssertEqual(cp, logf(5 * 30 / 34), accuracy: 1e-5)
        // Uniform counts: no correction.
        let u = EmbeddingTrainer(config: EmbeddingTrainerConfig(loss: .bpr, dimension: 4))
        for k in 0..<4 { u.train(pos("u", "i\(k)")) }
        XCTAssertEqual(u.logQCorrection(itemId: "i2")!, 0, accuracy: 1e-6)
    }

    func testSplitGradientsMatchSimplePath() {
        for loss in EmbeddingLoss.allCases {
            var c = EmbeddingTrainerConfig(loss: loss, dimension: 8, seed: 5)
            c.negatives = 1
            c.stepsPerExample = 1
            c.sampling = .uniform // two items: the only negative of "a" is "b"
            let a = EmbeddingTrainer(config: c), b = EmbeddingTrainer(config: c)
            for t in [a, b] { t.train(pos("u", "a")); t.train(pos("v", "b")) }
            XCTAssertEqual(a.users.vector(for: "u"), b.users.vector(for: "u"))
            a.train(pos("u", "a", 1))
            let negs = b.sampleNegatives(excluding: "a")
            XCTAssertEqual(negs.map(\.itemId), ["b"])
            let g = b.gradients(for: pos("u", "a", 1), userVector: b.users.vector(for: "u")!,
                                itemVector: b.items.vector(for: "a")!, negatives: negs)
            b.users.applyGradient(id: "u", gradient: g.userGradient)
            for (id, grad) in g.itemGradients { b.items.applyGradient(id: id, gradient: grad) }
            for (x, y) in zip(a.users.vector(for: "u")!, b.users.vector(for: "u")!) { XCTAssertEqual(x, y, accuracy: 1e-6) }
            for item in ["a", "b"] {
                for (x, y) in zip(a.items.vector(for: item)!, b.items.vector(for: item)!) { XCTAssertEqual(x, y, accuracy: 1e-6) }
            }
        }
    }

    func testBiasIsFoldedIntoVectors() {
        let t = EmbeddingTrainer(config: EmbeddingTrainerConfig(loss: .bpr, dimension: 8))
        for k in 0..<50 { t.train(pos("u\(k % 7)", "i\(k % 5)", Int64(k))) }
        let u = t.users.vector(for: "u1")!, v = t.items.vector(for: "i2")!
        XCTAssertEqual(u.last, 1, "user side holds the constant 1")
        XCTAssertNotEqual(v.last, 0, "item side learned a bias")
        let plain = zip(u, v).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        XCTAssertEqual(t.score(userId: "u1", itemId: "i2")!, plain, accuracy: 1e-5)
    }

    func testPseudoUserColdStart() {
        var c = EmbeddingTrainerConfig(loss: .bpr, dimension: 8)
        c.userAdmitAfter = 3
        let t = EmbeddingTrainer(config: c)
        t.train(pos("old", "a")); t.train(pos("old2", "b"))
        XCTAssertNil(t.servingUserVector(for: "new"))
        let va = t.items.vector(for: "a")!, vb = t.items.vector(for: "b")!
        t.train(pos("new", "a", 1)) // not admitted: no training, the pseudo sum gets a's vector
        t.train(pos("new", "b", 2))
        let s = t.servingUserVector(for: "new")!
        XCTAssertTrue(s.isPseudo)
        for k in 0..<7 { XCTAssertEqual(s.vector[k], (va[k] + vb[k]) / 2, accuracy: 1e-6) }
        XCTAssertEqual(s.vector[7], 1)
        let stateless = t.pseudoUserVector(positiveItems: ["a", "b", "unknown"])!
        for k in 0..<8 { XCTAssertEqual(stateless[k], s.vector[k], accuracy: 1e-6) }
        t.train(pos("new", "c", 3)) // third sighting: admitted
        XCTAssertEqual(t.servingUserVector(for: "new")?.isPseudo, false)
        XCTAssertEqual(t.pseudoUserCount, 2, "old and old2 are still pseudo users")
    }

    func testEvictionClearsSamplingCounts() {
        var c = EmbeddingTrainerConfig(loss: .bpr, dimension: 4)
        c.ttlMs = 1000
        let t = EmbeddingTrainer(config: c)
        t.train(pos("u", "a", 0)); t.train(pos("u", "b", 900))
        let (users, items) = t.evictExpired(now: 1500)
        XCTAssertEqual(users, [])
        XCTAssertEqual(items, ["a"])
        XCTAssertEqual(t.itemsSeen, 1)
        XCTAssertEqual(t.itemFrequency("a"), 0)
    }

    func testReplayTrainsMore() {
        var c = EmbeddingTrainerConfig(loss: .bpr, dimension: 8)
        c.replayBufferSize = 10
        c.replayPerExample = 2
        let t = EmbeddingTrainer(config: c)
        for k in 0..<20 { t.train(pos("u\(k % 3)", "i\(k % 4)", Int64(k))) }
        XCTAssertEqual(t.replaysTrained, 40)
    }
}
