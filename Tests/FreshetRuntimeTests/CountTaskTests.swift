import FreshetCore
import FreshetEmbeddings
import FreshetFeatures
@testable import FreshetRuntime
import XCTest

/// The counts stage in process (`TaskDriver`, default topology: examples on,
/// input keyed by user): every impression's `interaction_count` is the
/// user's positives with event time ≤ the impression's, whatever the order of
/// arrival, and a crash of the counts task replays to the same examples.
final class CountTaskTests: KeyedExamplesTestCase {
    func examples(_ d: TaskDriver) throws -> [TrainingExample] {
        try d.examples.flatMap { try ExampleCodec.decodeBundle(ExampleCodec.header + $0) }
            .filter { !$0.userId.hasPrefix("clock") }
    }

    /// request id -> the interaction_count its items' examples carry (each must agree).
    func countsByRequest(_ examples: [TrainingExample], file: StaticString = #filePath, line: UInt = #line) -> [String: Int64] {
        var result: [String: Int64] = [:]
        for e in examples where e.impressionTs != nil {
            guard let request = e.requestId, let count = e.features?.interactionCount else {
                XCTFail("example without request or features: \(e)", file: file, line: line)
                continue
            }
            if let seen = result[request] { XCTAssertEqual(seen, count, "request \(request)", file: file, line: line) }
            result[request] = count
        }
        return result
    }

    /// Out of order within the out-of-orderness bound (5 s): every event is
    /// on time, and the count is the user's positives with ts ≤ the
    /// impression's, whatever the order of arrival (an equal time counts).
    func testCountIsThePositivesAtOrBeforeTheImpressionWhateverTheArrivalOrderWithinTheBound() throws {
        let d = driver()
        // Positives at 100, 102 and 104 s arriving 104, 100, 102 (the
        // watermark after 104 s is 99 s: both others on time), a skip at 101 s
        // (not a positive), and impressions before, between, at and after them.
        for ts in [104, 100, 102] { interaction(d, "u1", "x\(ts)", at: base + Int64(ts) * second) }
        interaction(d, "u1", "x101", "skip", at: base + 101 * second)
        impression(d, "u1", ["a", "b", "c"], at: base + 50 * second, request: "before")
        impression(d, "u1", ["d", "d2"], at: base + 101 * second, request: "between")
        impression(d, "u1", ["e", "f", "g"], at: base + 102 * second, request: "equal")
        impression(d, "u1", ["h"], at: base + 105 * second, request: "after")
        d.runUntilQuiet()
        let counts = try XCTUnwrap(d.tasks.values.compactMap { $0 as? CountTask }.first { $0.count(userId: "u1", asOf: .max) > 0 })
        // The impressions wait in the item tasks for their features, the interactions in the counts stage.
        let waiting = d.tasks.values.compactMap { ($0 as? ItemTask)?.embeddings?.pending }.reduce(0) { $0 + $1.waitingCount }
        XCTAssertEqual(counts.heldCount + waiting, 4 + 9, "nothing released before the watermark passes")
        clock(d, at: base + 2 * hour)

        let all = try examples(d)
        XCTAssertEqual(countsByRequest(all), ["before": 0, "between": 1, "equal": 2, "after": 3])
        // Every impressed item gave an example (9 negatives at the close), and the
        // interactions joined without impressions (4, the skip included).
        XCTAssertEqual(all.filter { $0.impressionTs != nil }.count, 9)
        XCTAssertEqual(all.filter { $0.impressionTs == nil }.count, 4)
    }

    /// Beyond the bound a positive is late: it counts from when it is known
    /// (just past its partition's watermark when read), not from its ts. 300 s
    /// arrives first (watermark 295 s), then 100 s and 200 s, late: known from
    /// 295.001 s. The impressions at 150 s and 200 s do not count them (had the
    /// impressions partition been read first, they would have been released
    /// before the late positives arrived: the count would depend on the
    /// interleaving); the one at 296 s does.
    func testALatePositiveCountsFromWhenItIsKnown() throws {
        let d = driver()
        for ts in [300, 100, 200] { interaction(d, "u1", "x\(ts)", at: base + Int64(ts) * second) }
        impression(d, "u1", ["a"], at: base + 50 * second, request: "before")
        impression(d, "u1", ["d"], at: base + 150 * second, request: "between")
        impression(d, "u1", ["e"], at: base + 200 * second, request: "equal")
        impression(d, "u1", ["g"], at: base + 296 * second, request: "known")
        impression(d, "u1", ["h"], at: base + 350 * second, request: "after")
        d.runUntilQuiet()
        clock(d, at: base + 2 * hour)
        XCTAssertEqual(countsByRequest(try examples(d)), ["before": 0, "between": 0, "equal": 0, "known": 2, "after": 3])
    }

    /// An impression known long after its time: its count is exact while it
    /// is known within the counts stage's retention (a join window plus the
    /// join's late TTL, 70 minutes) of its time, whatever the interleaving;
    /// a later one carries -1 (its count would depend on when the older
    /// positives were pruned, which a breaker saw vary between runs: 240 or
    /// 121 for one impression read an hour late).
    func testAnImpressionKnownLongAfterItsTimeIsExactWithinTheRetentionElseUnknown() throws {
        var results: [[String: Int64]] = []
        for schedule in 0..<2 {
            let d = driver()
            let start = base + 10 * second
            let end = start + 3 * hour
            // u1 clicks every 30 s for 3 hours (on time), u3 shares the
            // impressions partition and moves its watermark to the end first.
            for k in 0..<360 {
                interaction(d, "u1", "x\(k)", at: start + Int64(k) * 30 * second)
                if schedule == 1 { d.runUntilQuiet() }
            }
            impression(d, "u3", ["lead"], at: end, request: "lead")
            if schedule == 1 { d.runUntilQuiet() }
            impression(d, "u1", ["a"], at: end - 30 * 60 * second, request: "thirty-minutes-late")
            impression(d, "u1", ["b"], at: end - 2 * hour, request: "two-hours-late")
            d.runUntilQuiet()
            clock(d, at: end + 3 * hour)
            results.append(countsByRequest(try examples(d)))
        }
        XCTAssertEqual(results[0], results[1], "the same whatever the interleaving")
        // Positives at or before end − 30 min: k·30 s ≤ 2 h 30 min, k = 0 … 300.
        XCTAssertEqual(results[0]["thirty-minutes-late"], 301)
        XCTAssertEqual(results[0]["two-hours-late"], CountTask.unknownCount)
    }

    /// An item task's part known by the watermark its partition already
    /// reported is a replay's copy (the first one came before that marker):
    /// dropped. One the item task says it evaluated behind its own watermark
    /// (an idle source left out of it) is new: taken.
    func testAPartBehindItsSendersWatermarkIsDroppedUnlessItSaysItWasEvaluatedThere() throws {
        guard let itemsCode = TaskId.Stage.items.originCode else { return XCTFail("the items stage has an origin code") }
        let sender = DuplicateFilter.Source(topic: itemsCode, partition: 0)
        let task = CountTask(id: TaskId(stage: .counts, partition: 0),
                             sources: [DuplicateFilter.Source(topic: 0, partition: 0), sender], idleTimeoutMs: nil,
                             retentionMs: hour, joinWindowMs: 600_000, nowMs: 0)
        let output = DataflowTests.MemoryOutput(partitions: 1)
        var offset: Int64 = 0
        func send(_ record: CountStageRecord) {
            var bundle: [UInt8] = []
            RecordBundle.append(record.encoded(), to: &bundle)
            task.process(InputRecord(partition: 0, offset: offset, key: nil, value: bundle, timestampMs: nil), nowMs: 0, output: output)
            offset += 1
        }
        func part(offset: Int64, behind: Bool) -> ImpressionFeaturesPart {
            var part = ImpressionFeaturesPart(
                senderPartition: 0, userId: "u1", ts: base, requestId: nil, source: RecordOrigin(sourceTopic: 1, partition: 0, offset: offset),
                knownFrom: base, items: [ImpressionFeaturesPart.Item(index: 0, itemId: "a", position: nil, popularity7d: 0, impressions7d: 1)])
            part.behindSendersWatermark = behind
            return part
        }
        send(.watermark(WatermarkMarker(sourceTopic: itemsCode, sourcePartition: 0, watermarkMs: base + second, finished: false)))
        send(.impressionFeatures(part(offset: 1, behind: false)))
        XCTAssertEqual(task.duplicatesDropped, 1, "a replay's copy")
        XCTAssertEqual(task.heldCount, 0)
        send(.impressionFeatures(part(offset: 2, behind: true)))
        XCTAssertEqual(task.duplicatesDropped, 1)
        XCTAssertEqual(task.heldCount, 1, "evaluated behind its sender's watermark: held for the counts task's own")
    }

    /// User ids are compared by their bytes: two canonically equivalent
    /// but different ids ("caf\u{E9}", "cafe\u{301}") are two users with
    /// counts of their own (a `Dictionary<String, _>` took them for one).
    func testCanonicallyEquivalentUserIdsKeepTheirOwnCounts() {
        let timelines = CountTimelines(retentionMs: hour)
        timelines.recordPositive(userId: "caf\u{E9}", ts: base, countAfter: 3, watermark: nil)
        timelines.recordPositive(userId: "cafe\u{301}", ts: base, countAfter: 5, watermark: nil)
        XCTAssertEqual(timelines.userCount, 2)
        XCTAssertEqual(timelines.count(userId: "caf\u{E9}", asOf: base), 3)
        XCTAssertEqual(timelines.count(userId: "cafe\u{301}", asOf: base), 5)
        XCTAssertEqual(timelines.count(userId: "cafe", asOf: base), 0)
    }

    /// An impression's features reach the counts stage as one record per
    /// item partition its items went to (tag 6, the user, time and request
    /// once), each shown item in exactly one: every shown item is joined
    /// once, with the impression's count.
    func testImpressionFeaturesAreGroupedPerItemPartition() throws {
        let d = driver()
        interaction(d, "u1", "x", at: base + 10 * second)
        let shown = (0..<9).map { "item-\($0)" }
        impression(d, "u1", shown, at: base + 50 * second, request: "big")
        d.runUntilQuiet()
        clock(d, at: base + 2 * hour)
        var parts = 0, indices: [UInt32] = []
        for (id, log) in d.logs where id.stage == .counts {
            for record in log {
                _ = RecordBundle.forEachDecodable(in: record.value) { bytes throws(CodecError) in
                    if case .impressionFeatures(let part) = try CountStageRecord.decode(bytes), part.requestId == "big" {
                        parts += 1
                        indices += part.items.map(\.index)
                        XCTAssertEqual(part.items.map(\.itemId), part.items.map { shown[Int($0.index)] })
                    }
                }
            }
        }
        XCTAssertEqual(indices.sorted(), (0..<9).map(UInt32.init), "each shown item sent once")
        XCTAssertGreaterThan(parts, 0)
        XCTAssertLessThanOrEqual(parts, 3, "at most one record per item partition")
        let joined = try examples(d).filter { $0.requestId == "big" }
        XCTAssertEqual(Set(joined.map(\.itemId)), Set(shown))
        XCTAssertEqual(joined.count, 9)
        XCTAssertTrue(joined.allSatisfy { $0.features?.interactionCount == 1 && $0.label == .negative })
    }

    func testAnEngagementAfterItsImpressionJoinsInEventTimeOrder() throws {
        let d = driver()
        interaction(d, "u2", "z", at: base + 10 * second)
        // The click reaches the source before the impression it engages with:
        // the counts stage still hands the impression to the joiner first.
        interaction(d, "u2", "a", at: base + 70 * second)
        d.runUntilQuiet()
        impression(d, "u2", ["a", "b"], at: base + 60 * second, request: "r")
        d.runUntilQuiet()
        clock(d, at: base + 2 * hour)
        let shown = try examples(d).filter { $0.impressionTs != nil }.sorted { $0.itemId < $1.itemId }
        XCTAssertEqual(shown.map(\.itemId), ["a", "b"])
        XCTAssertEqual(shown.map(\.label), [.positive, .negative])
        XCTAssertEqual(shown.map(\.late), [false, false])
        XCTAssertEqual(shown.map { $0.features?.interactionCount }, [1, 1], "the click at 70 s is after the impression")
    }

    func testALatePositiveCountsForImpressionsStillHeldButNotForReleasedOnes() throws {
        let d = driver()
        interaction(d, "u3", "p1", at: base + 100 * second)
        impression(d, "u3", ["a"], at: base + 200 * second, request: "released")
        d.runUntilQuiet()
        clock(d, at: base + 400 * second)  // watermark 395 s: "released" goes out with count 1
        // A positive at 150 s arrives behind the watermark (late), then an
        // impression at 500 s, still ahead of it.
        interaction(d, "u3", "p2", at: base + 150 * second)
        impression(d, "u3", ["b"], at: base + 500 * second, request: "held")
        d.runUntilQuiet()
        clock(d, at: base + 2 * hour)
        XCTAssertEqual(countsByRequest(try examples(d)), ["released": 1, "held": 2])
        XCTAssertEqual(d.userFeatures("u3")?.interactionCount, 2)
    }

    /// A bounded run's end: once every source announced its end, each counts
    /// task releases everything it holds, even ahead of the final watermark
    /// (the joiner gets every impression, stamped), and reports done.
    func testTheEndOfABoundedRunReleasesEverything() throws {
        let d = driver()
        interaction(d, "u4", "p", at: base + 10 * second)
        impression(d, "u4", ["a", "b"], at: base + 20 * second, request: "last")
        interaction(d, "u5", "q", at: base + 30 * second)
        d.runUntilQuiet()
        let counts = d.tasks.values.compactMap { $0 as? CountTask }
        let waiting = d.tasks.values.compactMap { ($0 as? ItemTask)?.embeddings?.pending }.reduce(0) { $0 + $1.waitingCount }
        XCTAssertEqual(counts.reduce(0) { $0 + $1.heldCount }, 2, "ahead of every watermark: the interactions held")
        XCTAssertEqual(waiting, 2, "and the impression's two items waiting for their features")
        XCTAssertFalse(counts.contains { $0.atEnd })
        d.finishSources()
        XCTAssertEqual(counts.reduce(0) { $0 + $1.heldCount }, 0)
        XCTAssertTrue(counts.allSatisfy(\.atEnd))
        XCTAssertTrue(d.tasks.values.compactMap { $0 as? ItemTask }.allSatisfy(\.atEnd), "item tasks heard every final marker")
        // Released into the joiner (its windows stay open: a bounded run does
        // not flush them), and the item features counted the impression once.
        let joiners = counts.map(\.joiner)
        XCTAssertEqual(joiners.reduce(0) { $0 + $1.peakStateCount }, 2)
        XCTAssertEqual(d.itemFeatures("a")?.impressions7d, 1)
        XCTAssertEqual(try examples(d).filter { $0.impressionTs == nil }.map(\.itemId).sorted(), ["p", "q"])
    }

    /// A breaker's finding: identical bounded runs wrote different examples.
    /// A late impression read after the counts task's watermark had reached
    /// the final one, with its window ended before it: the end released it
    /// into the joiner, but the watermark did not move, and the joiner closed
    /// only when it moved, so its negatives were never written (in 4 of 10
    /// runs of one input, as the item tasks' final markers came).
    func testTheEndClosesTheWindowsOfLateImpressionsBehindTheFinalWatermark() throws {
        let late = try lateImpressionExamplesAtTheEnd(driver())
        XCTAssertTrue(late.allSatisfy { $0.impressionTs == self.base + 1 * self.hour })
        // The same input with one more event on a source after the impression
        // (the watermark moves before the end): the same examples.
        let moved = driver()
        clock(moved, at: base + 2 * hour)
        impression(moved, "u1", ["a", "b"], at: base + 1 * hour, request: "late")
        clock(moved, at: base + 2 * hour + second)
        moved.finishSources()
        let key = { (e: TrainingExample) in "\(e.userId) \(e.itemId) \(e.label) \(e.eventTs) \(e.features?.interactionCount ?? -9)" }
        XCTAssertEqual(late.map(key).sorted(), try examples(moved).filter { $0.requestId == "late" }.map(key).sorted())
    }

    /// The same end without the counts stage (input not keyed by user: the
    /// item tasks join): the late impression's window closes at the end too.
    func testTheEndClosesLateImpressionsWindowsInTheItemStagesJoinToo() throws {
        var topology = Topology()
        topology.sources.keyedByUser = false
        _ = try lateImpressionExamplesAtTheEnd(driver(topology))
    }

    /// An impression an hour late (known just past its partition's
    /// watermark, held until a watermark passes that; its 10-minute window
    /// long ended), then the end of the bounded run with the watermark
    /// unmoved: its examples, checked to be its two items' negatives, none
    /// written before the end.
    func lateImpressionExamplesAtTheEnd(_ d: TaskDriver, file: StaticString = #filePath, line: UInt = #line) throws -> [TrainingExample] {
        clock(d, at: base + 2 * hour)
        impression(d, "u1", ["a", "b"], at: base + 1 * hour, request: "late")
        d.runUntilQuiet()
        XCTAssertTrue(try examples(d).filter { $0.requestId == "late" }.isEmpty, file: file, line: line)
        d.finishSources()
        let late = try examples(d).filter { $0.requestId == "late" }
        XCTAssertEqual(late.map(\.itemId).sorted(), ["a", "b"], "the impression's negatives", file: file, line: line)
        XCTAssertTrue(late.allSatisfy { $0.label == .negative }, file: file, line: line)
        return late
    }

    /// The counts task crashes after a checkpoint taken while it held
    /// records, having released more since: restored, it replays its input to
    /// the same releases into the restored joiner, so the examples equal a run
    /// without the crash but for those the crashed task emitted after the
    /// checkpoint, which the replay emits again (at least once, as after the
    /// crash of any task that writes examples), and the features equal too.
    func testACrashOfTheCountsTaskReplaysToTheSameExamples() throws {
        func feed(_ d: TaskDriver, round: Int) {
            let t0 = base + Int64(round) * 1_000 * second
            for u in 0..<6 {
                let user = "u\(u)"
                for k in 0..<3 { interaction(d, user, "i\((u + k + round) % 7)", at: t0 + Int64(10 * k + u) * second) }
                impression(d, user, ["i\(u % 7)", "i\((u + 3) % 7)", "i\((u + 5) % 7)"], at: t0 + Int64(15 + u) * second,
                           request: "r\(round)-\(u)")
            }
            d.runUntilQuiet()
            clock(d, at: t0 + 500 * second)
        }
        let clean = driver()
        let crashed = driver()
        var emittedAtCheckpoint = 0
        for round in 0..<4 {
            // The same input on both; the partitions' logs equal.
            for d in [clean, crashed] {
                feed(d, round: round)
                if round == 1 {
                    // Held records in the checkpoint: an impression of round 1.6 not yet released.
                    impression(d, "u1", ["i2"], at: base + 1_600 * second, request: "mid")
                    d.runUntilQuiet()
                }
            }
            if round == 1 {
                try crashed.checkpoint()
                let held = crashed.tasks.values.compactMap { $0 as? CountTask }.reduce(0) { $0 + $1.heldCount }
                XCTAssertGreaterThan(held, 0, "the checkpoint holds records")
                emittedAtCheckpoint = crashed.examples.count
            }
        }
        let emittedAtCrash = crashed.examples.count
        XCTAssertGreaterThan(emittedAtCrash, emittedAtCheckpoint, "examples emitted after the checkpoint")
        for p: Int32 in 0..<3 { try crashed.crash(TaskId(stage: .counts, partition: p)) }
        crashed.runUntilQuiet()
        clock(clean, at: base + 3 * hour)
        clock(crashed, at: base + 3 * hour)

        let key = { (e: TrainingExample) in "\(e.userId) \(e.itemId) \(e.requestId ?? "-") \(e.eventTs) \(e.label) \(e.features?.interactionCount ?? -9)" }
        // The crashed run's examples less those emitted between the checkpoint and the crash.
        var afterReplay = crashed.examples
        let emittedAgain = afterReplay[emittedAtCheckpoint..<emittedAtCrash]
        afterReplay.removeSubrange(emittedAtCheckpoint..<emittedAtCrash)
        func decoded(_ messages: some Sequence<[UInt8]>) throws -> [TrainingExample] {
            try messages.flatMap { try ExampleCodec.decodeBundle(ExampleCodec.header + $0) }.filter { !$0.userId.hasPrefix("clock") }
        }
        XCTAssertEqual(try decoded(afterReplay).map(key).sorted(), try examples(clean).map(key).sorted())
        // What the crash made the task emit again is what it had emitted since the checkpoint.
        let replayed = Dictionary(try decoded(afterReplay).map { (key($0), 1) }, uniquingKeysWith: +)
        for e in try decoded(emittedAgain) { XCTAssertNotNil(replayed[key(e)], "emitted again: \(key(e))") }
        XCTAssertEqual(countsByRequest(try decoded(afterReplay))["mid"], 3 + 3)
        for item in (0..<7).map({ "i\($0)" }) {
            XCTAssertEqual(crashed.itemFeatures(item)?.impressions7d, clean.itemFeatures(item)?.impressions7d, item)
        }
    }
}
