import FreshetCore
@testable import FreshetEmbeddings
import XCTest

/// `DeadlineQueue` pops exactly what a heap ordered by (deadline, push
/// sequence) pops, for any order of pushes and limits.
final class DeadlineQueueTests: XCTestCase {
    /// The reference: everything pushed, popped by a full sort.
    private struct Reference {
        var held: [(deadline: Int64, sequence: Int, payload: Int)] = []
        var pushes = 0
        mutating func push(_ deadline: Int64, _ payload: Int) {
            pushes += 1
            held.append((deadline, pushes, payload))
        }
        mutating func popAll(through limit: Int64) -> [Int] {
            let due = held.filter { $0.deadline <= limit }.sorted { ($0.deadline, $0.sequence) < ($1.deadline, $1.sequence) }
            held.removeAll { $0.deadline <= limit }
            return due.map(\.payload)
        }
    }

    private func check(seed: UInt64, granularityMs: Int64, spread: Int64, backwards: Int64, rounds: Int) {
        var random = SplitMix64(seed: seed)
        var queue = DeadlineQueue<Int>(granularityMs: granularityMs)
        var reference = Reference()
        var clock: Int64 = -5_000  // negative times too: buckets floor, not truncate
        var payload = 0
        for round in 0..<rounds {
            let pushes = Int(random.next() % 40)
            for _ in 0..<pushes {
                // Mostly ahead of the clock, some behind it (late), ties common.
                let offset = Int64(random.next() % UInt64(spread)) - Int64(random.next() % UInt64(backwards + 1))
                let deadline = clock + offset
                payload += 1
                queue.push(deadline, payload)
                reference.push(deadline, payload)
            }
            clock += Int64(random.next() % UInt64(granularityMs * 3))
            var popped: [Int] = []
            queue.popAll(through: clock) { deadline, value in
                XCTAssertLessThanOrEqual(deadline, clock)
                popped.append(value)
            }
            XCTAssertEqual(popped, reference.popAll(through: clock), "seed \(seed), round \(round)")
            XCTAssertEqual(queue.count, reference.held.count)
        }
        var rest: [Int] = []
        queue.popAll(through: Int64.max) { _, value in rest.append(value) }
        XCTAssertEqual(rest, reference.popAll(through: Int64.max))
        XCTAssertTrue(queue.isEmpty)
    }

    func testPopsInDeadlineThenPushOrderForAnyPushOrder() {
        for seed in 1...20 as ClosedRange<UInt64> {
            check(seed: seed, granularityMs: 100, spread: 1_000, backwards: 300, rounds: 200)
            check(seed: seed &* 7, granularityMs: 1, spread: 5, backwards: 5, rounds: 100)
            check(seed: seed &* 13, granularityMs: 1_000, spread: 600_000, backwards: 60_000, rounds: 100)
        }
    }

    func testTiesComeOutInPushOrderAndALimitInsideABucketKeepsTheRest() {
        var queue = DeadlineQueue<String>(granularityMs: 1_000)
        queue.push(1_500, "b1")
        queue.push(1_200, "a")
        queue.push(1_500, "b2")
        queue.push(1_900, "c")
        queue.push(-1, "negative")
        var popped: [String] = []
        queue.popAll(through: 1_500) { _, value in popped.append(value) }
        XCTAssertEqual(popped, ["negative", "a", "b1", "b2"])
        queue.push(1_600, "d")  // into the bucket left partly popped
        popped.removeAll()
        queue.popAll(through: 1_899) { _, value in popped.append(value) }
        XCTAssertEqual(popped, ["d"])
        XCTAssertEqual(queue.count, 1)
        queue.popAll(through: Int64.max) { _, value in popped.append(value) }
        XCTAssertEqual(popped, ["d", "c"])
    }

    func testExtremeDeadlines() {
        var queue = DeadlineQueue<Int>(granularityMs: 1_000)
        queue.push(Int64.max, 1)
        queue.push(Int64.min, 2)
        queue.push(0, 3)
        var popped: [Int] = []
        queue.popAll(through: Int64.min) { _, value in popped.append(value) }
        XCTAssertEqual(popped, [2])
        queue.popAll(through: Int64.max) { _, value in popped.append(value) }
        XCTAssertEqual(popped, [2, 3, 1])
    }
}
