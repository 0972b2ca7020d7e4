import XCTest
import FreshetCore
@testable import FreshetEmbeddings
import FreshetWorkload

final class EvaluatorTests: XCTestCase {
    var ts: Int64 = 0
    func ev(_ u: String, _ i: String, _ a: Action = .click) -> InputEvent {
        ts += 1000
        return .interaction(Interaction(userId: u, itemId: i, action: a, ts: ts))
    }

    func trainer() -> EmbeddingTrainer { EmbeddingTrainer(config: EmbeddingTrainerConfig(loss: .bpr, dimension: 8)) }

    func testUnseenTargetIsAMissAndNewUsersAreNotScored() {
        let events = [ev("u1", "a"), ev("u2", "a"), ev("u1", "b")]
        let r = PrequentialEvaluator().evaluate(events, trainer: trainer())
        XCTAssertEqual(r.events, 3)
        XCTAssertEqual(r.scored, 1) // only u1's second interaction
        XCTAssertEqual(r.model.full.count, 1)
        XCTAssertEqual(r.model.full.unseenTargets, 1)
        XCTAssertEqual(r.model.full.hr10, 0)
        XCTAssertEqual(r.popularity.full.recall50, 0)
    }

    func testInteractedItemsAreExcluded() {
        var events: [InputEvent] = []
        // 15 popular items, all already consumed by z; target t is weak.
        for p in 0..<15 { for k in 0..<5 { events.append(ev("w\(p)_\(k)", "p\(p)")) } }
        for p in 0..<15 { events.append(ev("z", "p\(p)")) }
        events.append(ev("x", "t"))
        for q in 0..<5 { events.append(ev("y", "q\(q)", .skip)) }
        events.append(ev("z", "t"))
        let r = PrequentialEvaluator(warmFraction: 0).evaluate(events, trainer: trainer())
        // z's last click: candidates are t and q0..q4 (z's p-items excluded); t has pop 1 > 0.
        XCTAssertEqual(r.scored, 15) // z's clicks after its first one
        // The last event is z→t; popularity ranks it first among candidates: hit in every metric.
        // A warm slice of exactly one event isolates it (unexcluded, t would rank 16th).
        let r2 = PrequentialEvaluator(warmFraction: 1.0 / Double(events.count)).evaluate(events, trainer: trainer())
        XCTAssertEqual(r2.popularity.warm.count, 1)
        XCTAssertEqual(r2.popularity.warm.hits10, 1)
        XCTAssertEqual(r2.popularity.warm.recallHits10, 1)
    }

    func testTiesAreBrokenAtRandom() {
        var events: [InputEvent] = []
        for k in 0..<40 { events.append(ev("w\(k)", "i\(k)")) }
        events.append(ev("z", "s", .skip))
        events.append(ev("z", "i7"))
        var hits10 = 0, hits50 = 0, hr = 0
        let runs = 200
        for seed in 0..<UInt64(runs) {
            let r = PrequentialEvaluator(warmFraction: 0, seed: seed).evaluate(events, trainer: trainer())
            XCTAssertEqual(r.scored, 1)
            hits10 += r.popularity.full.recallHits10
            hits50 += r.popularity.full.recallHits50
            hr += r.popularity.full.hits10
        }
        // Target tied with 39 candidates: rank uniform in 1...40.
        XCTAssertEqual(Double(hits10) / Double(runs), 0.25, accuracy: 0.1)
        XCTAssertEqual(Double(hr) / Double(runs), 0.25, accuracy: 0.1)
        XCTAssertEqual(hits50, runs)
    }

    func testReportJSONShape() throws {
        let events = [ev("u1", "a"), ev("u2", "b"), ev("u1", "b")]
        let r = PrequentialEvaluator().evaluate(events, trainer: trainer())
        let obj = try JSONSerialization.jsonObject(with: Data(r.jsonString().utf8)) as! [String: Any]
        XCTAssertEqual(Set(obj.keys), ["events", "scored", "model", "popularity"])
        let model = obj["model"] as! [String: Any]
        let full = model["full"] as! [String: Any]
        XCTAssertEqual(Set(full.keys), ["hr10", "recall10", "recall50"])
        XCTAssertEqual(obj["events"] as? Int, 3)
    }

    /// The model must learn the planted clusters: far above popularity on HR@10.
    func testLearnsPlantedClusters() {
        let world = PlantedPreferences(PlantedConfig(users: 2000, items: 500, clusters: 8, events: 60_000, seed: 11))
        let events = world.inputEvents()
        let t = EmbeddingTrainer(config: EmbeddingTrainerConfig(loss: .bpr, dimension: 16, seed: 1))
        let r = PrequentialEvaluator(computeRecall: false, seed: 2).evaluate(events, trainer: t)
        let m = r.model.full.hr10, p = r.popularity.full.hr10
        print("planted: model HR@10 \(m) (warm \(r.model.warm.hr10)), popularity \(p) (warm \(r.popularity.warm.hr10))")
        XCTAssertGreaterThan(r.scored, 50_000)
        XCTAssertGreaterThanOrEqual(m, 1.5 * p)
        XCTAssertGreaterThan(m - p, 0.15)
        XCTAssertGreaterThanOrEqual(r.model.warm.hr10, 1.5 * r.popularity.warm.hr10)
    }

    func testPlantedStreamIsOrderedAndDeterministic() throws {
        let c = PlantedConfig(users: 50, items: 30, clusters: 3, events: 300, impressions: true, seed: 4)
        let a = Array(PlantedStream(c)), b = Array(PlantedStream(c))
        XCTAssertEqual(a.count, 600)
        XCTAssertEqual(a.map(\.json), b.map(\.json))
        var last: Int64 = 0
        for rec in a {
            let obj = try JSONSerialization.jsonObject(with: Data(rec.json)) as! [String: Any]
            let ts = (obj["ts"] as! NSNumber).int64Value
            XCTAssertGreaterThanOrEqual(ts, last); last = ts
            XCTAssertEqual(obj["user_id"] as? String, rec.key)
            XCTAssertEqual(rec.topic, obj["items_shown"] != nil ? "impressions" : "interactions")
        }
        XCTAssertEqual(PlantedPreferences(c).jsonLines().split(separator: "\n").count, 600)
        // With impressions, the evaluator also trains on window-closed negatives.
        let r = PrequentialEvaluator(computeRecall: true, joinWindowMs: 10_000).evaluate(PlantedPreferences(c).inputEvents(), trainer: trainer())
        XCTAssertGreaterThan(r.joinerNegatives, 0)
    }
}
