import FreshetCore
import FreshetEmbeddings
@testable import FreshetRuntime
import XCTest

/// The examples are a function of each source partition's log, not of how
/// the partitions' records interleave on their way through the stages, late
/// events included. The same per-partition logs (events out of order by up to
/// 90 s, far past the 5 s bound; a heavy user; clicks inside and outside the
/// join window; repeated impressions of a pair) are read under seeded random
/// schedules: partitions fed a few records at a time in random order, tasks
/// run in random order between them (so watermark markers fall in different
/// places), counts tasks crashing after checkpoints. Every schedule must give the same examples, and every
/// impression's `interaction_count` must be the user's positives known by its
/// time (`BoundedOutOfOrdernessWatermark.knownAt`), computed here from the logs
/// alone. Before known-from times, late records were released or joined by
/// whether the watermark happened to pass them first: watermark alignment
/// (which changes the interleaving) gave different, wrong counts and fewer
/// joined clicks between identical runs.
final class LateEventScheduleTests: KeyedExamplesTestCase {
    struct Event {
        var topic: TaskId.Stage
        var user: String
        var ts: Int64
        var json: [UInt8]
        var positive = false
        var request: String?
        /// The interaction's item, or the impression's shown items.
        var items: [String] = []
    }

    /// Per source partition, in log order.
    func logs(seed: UInt64) -> [TaskId: [Event]] {
        var rng = SplitMix64(seed: seed)
        var events: [(arrival: Int64, event: Event)] = []
        var t = base
        let actions = ["click", "watch", "like", "share", "skip"]
        for n in 0..<700 {
            t += Int64.random(in: 0..<6_000, using: &rng)
            // u0 is the heavy user: about half the traffic.
            let user = Bool.random(using: &rng) ? "u0" : "u\(Int.random(in: 1..<8, using: &rng))"
            let request = "r\(n)"
            // Items from a small pool, so pairs are impressed again, inside and after the window.
            let shown = (0..<3).map { _ in "i\(Int.random(in: 0..<25, using: &rng))" }
            let json = #"{"request_id":"\#(request)","user_id":"\#(user)","items_shown":["\#(shown.joined(separator: "\",\""))"],"ts":\#(t)}"#
            events.append((t + Int64.random(in: -90_000...90_000, using: &rng),
                           Event(topic: .impressions, user: user, ts: t, json: Array(json.utf8), request: request,
                                 items: shown)))
            for item in shown where Int.random(in: 0..<3, using: &rng) == 0 {
                // Mostly inside the 10-minute window, some after it.
                let ts = t + Int64.random(in: 1_000..<800_000, using: &rng)
                let action = actions[Int.random(in: 0..<actions.count, using: &rng)]
                let json = #"{"user_id":"\#(user)","item_id":"\#(item)","action":"\#(action)","ts":\#(ts)}"#
                events.append((ts + Int64.random(in: -90_000...90_000, using: &rng),
                               Event(topic: .interactions, user: user, ts: ts, json: Array(json.utf8), positive: action != "skip",
                                     items: [item])))
            }
        }
        events.sort { $0.arrival < $1.arrival }
        var logs: [TaskId: [Event]] = [:]
        for (_, e) in events { logs[TaskId(stage: e.topic, partition: partition(e.user)), default: []].append(e) }
        // Then every partition far ahead: every window closes, every tombstone expires.
        let end = t + 4 * hour
        for p: Int32 in 0..<2 {
            let clock = "clock\(p)"
            logs[TaskId(stage: .interactions, partition: p), default: []].append(Event(
                topic: .interactions, user: clock, ts: end,
                json: Array(#"{"user_id":"\#(clock)","item_id":"clock-item","action":"skip","ts":\#(end)}"#.utf8)))
            logs[TaskId(stage: .impressions, partition: p), default: []].append(Event(
                topic: .impressions, user: clock, ts: end,
                json: Array(#"{"user_id":"\#(clock)","items_shown":["clock-item"],"ts":\#(end)}"#.utf8)))
        }
        return logs
    }

    /// The examples of one schedule, as comparable strings, the serving
    /// features of the impression included.
    /// Item tasks crashed (after a checkpoint) while they held join copies
    /// or impressions waiting for the watermark, over every schedule run.
    var itemCrashesWithPendingState = 0

    func run(_ logs: [TaskId: [Event]], schedule seed: UInt64?) throws -> [String] {
        let d = driver()
        if let seed {
            let victims = d.tasks.keys.filter { $0.stage == .counts || $0.stage == .items }.sorted { $0.description < $1.description }
            let all = d.tasks.keys.sorted { $0.description < $1.description }
            try d.sendInRandomOrder(logs.mapValues { $0.map(\.json) }, seed: seed, maxChunk: 12, maxRuns: 3) { rng in
                // Now and then a counts or item task crashes after a
                // checkpoint (late records and impressions held in the counts
                // stage, impressions waiting in an item task included):
                // it replays to the same releases and the same features.
                guard Int.random(in: 0..<60, using: &rng) == 0, let victim = victims.randomElement(using: &rng) else { return }
                try d.checkpoint { $0 == victim }
                if let item = d.tasks[victim] as? ItemTask, (item.embeddings?.pending.waitingCount ?? 0) > 0 {
                    itemCrashesWithPendingState += 1
                }
                if Bool.random(using: &rng), let task = all.randomElement(using: &rng) { d.run(task) }
                try d.crash(victim)
            }
        } else {
            // Reference: every log whole, then the stages in order.
            for (id, log) in logs { for e in log { d.send(id.stage, partition: id.partition, e.json) } }
        }
        d.runUntilQuiet()
        return try d.examples.flatMap { try ExampleCodec.decodeBundle(ExampleCodec.header + $0) }
            .filter { !$0.userId.hasPrefix("clock") }
            .map { e -> String in
                let context = "\(e.userId) \(e.itemId) \(e.label) \(e.action?.name ?? "-") late \(e.late) req \(e.requestId ?? "-") "
                    + "imp \(e.impressionTs.map(String.init) ?? "-") ts \(e.eventTs) pos \(e.position.map(String.init) ?? "-") "
                let features = e.features.map { "count \($0.interactionCount) pop \($0.popularity7d) imps \($0.impressions7d)" }
                return context + (features ?? "count - pop - imps -")
            }
            .sorted()
    }

    /// request id → the user's positives known by the impression's time,
    /// from the logs alone: each partition's watermark (largest ts − 5 s)
    /// gives every late event its known-from time.
    func expectedCounts(_ logs: [TaskId: [Event]]) -> [String: Int64] {
        var knownPositives: [String: [Int64]] = [:]
        var impressions: [(user: String, request: String, ts: Int64)] = []
        for (_, log) in logs {
            var watermark = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)
            for e in log {
                watermark.observe(e.ts)
                if e.positive { knownPositives[e.user, default: []].append(watermark.knownAt(e.ts) ?? e.ts) }
                if let request = e.request { impressions.append((e.user, request, e.ts)) }
            }
        }
        var expected: [String: Int64] = [:]
        for m in impressions {
            expected[m.request] = Int64((knownPositives[m.user] ?? []).filter { $0 <= m.ts }.count)
        }
        return expected
    }

    /// "request item" → the item's (positives, impressions) known by the
    /// impression's known-from time K, over the panes pane(K) − 167 ...
    /// pane(ts) (docs/EMBEDDINGS.md, "Item features as of the impression"),
    /// from the logs alone.
    func expectedItemFeatures(_ logs: [TaskId: [Event]]) -> [String: (Int64, Int64)] {
        struct Known { var item: String; var ts: Int64; var knownFrom: Int64; var positive: Bool }
        var events: [Known] = []
        var impressions: [(request: String, items: [String], ts: Int64, knownFrom: Int64)] = []
        for (_, log) in logs {
            var watermark = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)
            for e in log {
                watermark.observe(e.ts)
                let knownFrom = watermark.knownAt(e.ts) ?? e.ts
                if e.topic == .impressions || e.positive {
                    for item in e.items { events.append(Known(item: item, ts: e.ts, knownFrom: knownFrom, positive: e.positive)) }
                }
                if let request = e.request { impressions.append((request, e.items, e.ts, knownFrom)) }
            }
        }
        let panes = PaneSpec()
        var expected: [String: (Int64, Int64)] = [:]
        for m in impressions {
            let lo = panes.pane(of: m.knownFrom) - Int64(panes.windowPanes) + 1, hi = panes.pane(of: m.ts)
            for item in Set(m.items) {
                var positives: Int64 = 0, shown: Int64 = 0
                for e in events where e.item == item && e.knownFrom <= m.knownFrom {
                    let pane = panes.pane(of: e.ts)
                    guard pane >= lo && pane <= hi else { continue }
                    if e.positive { positives += 1 } else { shown += 1 }
                }
                expected["\(m.request) \(item)"] = (positives, shown)
            }
        }
        return expected
    }

    func testExamplesWithLateEventsAreTheSameInEverySchedule() throws {
        let logs = logs(seed: 3)
        let late = logs.values.reduce(0) { total, log in
            var watermark = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)
            return total + log.filter { watermark.observe($0.ts); return watermark.knownAt($0.ts) != nil }.count
        }
        XCTAssertGreaterThan(late, 200, "the input has late events")
        let reference = try run(logs, schedule: nil)
        XCTAssertGreaterThan(reference.count, 800)
        XCTAssertTrue(reference.contains { $0.contains("late true") }, "some positives are late for their window")
        XCTAssertTrue(reference.contains { $0.contains(" positive ") && $0.contains(" imp 1") && $0.contains("late false") },
                      "some clicks join their impression")

        // interaction_count: the positives known by the impression's time.
        let expected = expectedCounts(logs)
        var wrong: [String] = []
        for line in reference where line.contains(" imp 1") {
            let fields = line.split(separator: " ")
            guard let r = fields.firstIndex(of: "req"), let c = fields.firstIndex(of: "count") else { continue }
            let request = String(fields[r + 1])
            if Int64(fields[c + 1]) != expected[request] { wrong.append("\(line) (expected \(expected[request] ?? -1))") }
        }
        XCTAssertTrue(wrong.isEmpty, "\(wrong.count) examples with a wrong count, e.g.\n" + wrong.prefix(5).joined(separator: "\n"))

        // popularity_7d, impressions_7d: the item's events known by the impression's known-from time.
        let expectedItems = expectedItemFeatures(logs)
        var wrongItems: [String] = []
        var checked = 0
        for line in reference where line.contains(" imp 1") {
            let fields = line.split(separator: " ")
            guard let r = fields.firstIndex(of: "req"), let p = fields.firstIndex(of: "pop"),
                  let i = fields.firstIndex(of: "imps") else { continue }
            let key = "\(fields[r + 1]) \(fields[1])"
            checked += 1
            let want = expectedItems[key]
            if Int64(fields[p + 1]) != want?.0 || Int64(fields[i + 1]) != want?.1 {
                wrongItems.append("\(line) (expected pop \(want?.0 ?? -1) imps \(want?.1 ?? -1))")
            }
        }
        XCTAssertGreaterThan(checked, 800)
        XCTAssertTrue(wrongItems.isEmpty, "\(wrongItems.count) of \(checked) examples with wrong item features, e.g.\n"
                      + wrongItems.prefix(5).joined(separator: "\n"))

        // A crashed item task sends the examples since its checkpoint again
        // (at least once): schedules are compared by their distinct examples.
        XCTAssertEqual(Set(reference).count, reference.count, "the reference has no duplicates")
        for seed: UInt64 in 1...12 {
            let got = Array(Set(try run(logs, schedule: seed))).sorted()
            guard got != reference else { continue }
            let missing = Set(reference).subtracting(got), extra = Set(got).subtracting(reference)
            XCTFail("schedule \(seed): \(got.count) examples (reference \(reference.count)); missing \(missing.count), e.g.\n"
                    + missing.sorted().prefix(4).joined(separator: "\n") + "\nunexpected \(extra.count), e.g.\n"
                    + extra.sorted().prefix(4).joined(separator: "\n"))
        }
        XCTAssertGreaterThan(itemCrashesWithPendingState, 0, "item tasks crashed with copies or impressions waiting")
    }
}
