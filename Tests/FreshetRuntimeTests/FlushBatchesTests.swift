@testable import FreshetRuntime
import XCTest

/// A flush's writes go to the writer in one batch unless they grow past the
/// limit: then in order, as they are rendered, and the last batch carries
/// the freshness samples.
final class FlushBatchesTests: XCTestCase {
    private func write(_ partition: Int32, valueBytes: Int) -> FencedWrite {
        let task = TaskId(stage: .interactions, partition: partition)
        var write = FencedWrite(task: task, epochKey: "epoch:\(partition)", epoch: 1)
        if valueBytes > 0 { write.hashSet("user:u\(partition)", [("field", [UInt8](repeating: 7, count: valueBytes))]) }
        return write
    }

    func testAnOrdinaryFlushIsOneBatchWithItsSamples() {
        var batches = FlushBatches(limitBytes: 10_000)
        for p in 0..<4 { XCTAssertNil(batches.add(write(Int32(p), valueBytes: 100))) }
        let last = batches.finish(eventTimeSamples: [5, 6])
        XCTAssertEqual(last?.writes.map(\.task.partition), [0, 1, 2, 3])
        XCTAssertEqual(last?.eventTimeSamples, [5, 6])
        XCTAssertNil(batches.finish(eventTimeSamples: []), "nothing held any more")
    }

    func testALargeFlushGoesOutAsItsTasksRenderInTaskOrder() {
        var batches = FlushBatches(limitBytes: 1_000)
        var sent: [[Int32]] = []
        for (p, size) in [600, 600, 100, 2_000, 50, 0].enumerated() {
            if let batch = batches.add(write(Int32(p), valueBytes: size)) { sent.append(batch.writes.map(\.task.partition)) }
        }
        XCTAssertEqual(sent, [[0, 1], [2, 3]], "each batch once the writes held reached the limit")
        let last = batches.finish(eventTimeSamples: [9])
        XCTAssertEqual(last?.writes.map(\.task.partition), [4], "the rest (an empty write is dropped)")
        XCTAssertEqual(last?.eventTimeSamples, [9])
    }

    func testSamplesOfAFlushSentEarlyGoInALastEmptyBatch() {
        var batches = FlushBatches(limitBytes: 100)
        XCTAssertNotNil(batches.add(write(0, valueBytes: 500)))
        let last = batches.finish(eventTimeSamples: [3])
        XCTAssertEqual(last?.writes.count, 0)
        XCTAssertEqual(last?.eventTimeSamples, [3], "acknowledged after the batches before it")
        XCTAssertNil(FlushBatchesTests.emptyFinish(), "no writes, no samples: nothing")
    }

    private static func emptyFinish() -> RedisWriter.Batch? {
        var batches = FlushBatches()
        _ = batches.add(FencedWrite(task: TaskId(stage: .interactions, partition: 0), epochKey: "e", epoch: 1))
        return batches.finish(eventTimeSamples: [])
    }
}
