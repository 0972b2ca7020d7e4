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
