import Foundation
import FreshetRedis
import FreshetTestSupport
@testable import FreshetRuntime
import XCTest

/// The fencing script against a real Redis: a stale epoch never writes.
final class FencingTests: XCTestCase {
    var cluster: LocalCluster!
    var port: Int { cluster.redisPort }

    override func setUpWithError() throws {
        cluster = try LocalCluster(withBroker: false)
    }

    override func tearDown() {
        cluster?.stop()
    }

    final class NullObserver: WriterObserver {
        func pipelineCompleted(seconds: Double, commands: Int) {}
        func freshness(seconds: Double) {}
        func redisRetry(error: RedisError, attempt: Int) {}
    }

    func testAZombieWithAStaleEpochCannotOverwriteTheNewOwner() throws {
        let endpoint = try RedisEndpoint(url: "redis://127.0.0.1:\(port)")
        let redis = try RedisConnection(endpoint: endpoint)
        let task = TaskId(stage: .items, partition: 3)
        let keys = RedisKeys(prefix: "", group: "g")
        // Old owner took the task at epoch 1; the new owner bumps it to 2.
        XCTAssertEqual(try redis.command(["INCR", keys.epoch(task)]).int, 1)
        XCTAssertEqual(try redis.command(["INCR", keys.epoch(task)]).int, 2)

        let writer = try RedisWriter(endpoint: endpoint, observer: NullObserver())
        writer.start()
        defer { writer.stop() }

        var owner = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 2)
        owner.hashSet("item:i1", [("popularity_7d", "5")])
        owner.sortedSetAdd("trending", score: 10, member: "i1")
        var zombie = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
        zombie.hashSet("item:i1", [("popularity_7d", "4")])
        zombie.sortedSetAdd("trending", score: 99, member: "i1")
        writer.submit(RedisWriter.Batch(writes: [owner, zombie]))
        writer.waitUntilDrained()

        XCTAssertEqual(try redis.command(["HGET", "item:i1", "popularity_7d"]).string, "5")
        XCTAssertEqual(try redis.command(["ZSCORE", "trending", "i1"]).string, "10")
        let fenced = writer.takeReport().fencedTasks
        XCTAssertEqual(fenced.map(\.task), [task], "the stale write is reported as fenced")
        XCTAssertEqual(fenced.map(\.epoch), [1], "with the stale epoch it carried")
    }

    final class CountingObserver: WriterObserver, @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [Int] = []
        var pipelineCommandCounts: [Int] { lock.lock(); defer { lock.unlock() }; return counts }
        func pipelineCompleted(seconds: Double, commands: Int) { lock.lock(); counts.append(commands); lock.unlock() }
        func freshness(seconds: Double) {}
        func redisRetry(error: RedisError, attempt: Int) {}
    }

    /// The writer's memory bounds: with a pipeline bound below one batch,
    /// each batch goes in a pipeline of its own, and every write lands, in
    /// submission order (the last value of a field wins), however many
    /// batches wait on the byte bound.
    func testBatchesBeyondTheByteBoundsAllLandInOrder() throws {
        let endpoint = try RedisEndpoint(url: "redis://127.0.0.1:\(port)")
        let redis = try RedisConnection(endpoint: endpoint)
        let task = TaskId(stage: .users, partition: 1)
        let keys = RedisKeys(prefix: "", group: "g")
        _ = try redis.command(["INCR", keys.epoch(task)])
        let observer = CountingObserver()
        let writer = try RedisWriter(store: RedisTarget.single(endpoint).makeStore(), keys: nil,
                                     maxQueuedBytes: 4_096, maxPipelineBytes: 1_024, observer: observer)
        writer.start()
        defer { writer.stop() }
        let blob = [UInt8](repeating: 7, count: 2_000)
        for n in 0..<40 {
            var write = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
            write.hashSet("user:u\(n % 5)", [("embedding_64d", blob), ("n", Array(String(n).utf8))])
            writer.submit(RedisWriter.Batch(writes: [write]))
        }
        writer.waitUntilDrained()
        for u in 0..<5 {
            XCTAssertEqual(try redis.command(["HGET", "user:u\(u)", "n"]).string, String(35 + u), "the last write of each key wins")
            XCTAssertEqual(try redis.command(["HSTRLEN", "user:u\(u)", "embedding_64d"]).int, 2_000)
        }
        let pipelines = observer.pipelineCommandCounts
        XCTAssertEqual(pipelines.reduce(0, +), 40)
        XCTAssertEqual(pipelines.count, 40, "a batch larger than the pipeline bound goes alone")
    }

    func testTrimKeepsTheTopKAndLargeHashesAreChunked() throws {
        let endpoint = try RedisEndpoint(url: "redis://127.0.0.1:\(port)")
        let redis = try RedisConnection(endpoint: endpoint)
        let task = TaskId(stage: .items, partition: 0)
        let keys = RedisKeys(prefix: "", group: "g")
        _ = try redis.command(["INCR", keys.epoch(task)])
        let writer = try RedisWriter(endpoint: endpoint, observer: NullObserver())
        writer.start()
        defer { writer.stop() }
        var write = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
        for i in 0..<20 { write.sortedSetAdd("trending", score: Double(i), member: "i\(i)") }
        write.sortedSetTrim("trending", keep: 5)
        write.hashSet("big", (0..<3_000).map { ("f\($0)", "v\($0)") })
        writer.submit(RedisWriter.Batch(writes: [write]))
        writer.waitUntilDrained()
        let members = try redis.command(["ZREVRANGE", "trending", "0", "-1"]).array?.compactMap(\.string)
        XCTAssertEqual(members, ["i19", "i18", "i17", "i16", "i15"])
        XCTAssertEqual(try redis.command(["HLEN", "big"]).int, 3_000)
        XCTAssertEqual(try redis.command(["HGET", "big", "f2999"]).string, "v2999")
    }
}
