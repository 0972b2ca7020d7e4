import Foundation
import FreshetEmbeddings
import FreshetRedis
import FreshetTestSupport
@testable import FreshetRuntime
import XCTest

/// The processor's own threads are joined by their `stop` before what they
/// use is closed or freed, against a real Redis (a shutdown used to close
/// the refresher's hiredis context under its thread, and to leave the writer's
/// thread running past the processor's end).
final class ThreadJoinTests: XCTestCase {
    /// Connections Redis has open, but ours (`CLIENT LIST`).
    static func otherClients(_ redis: RedisConnection) throws -> Int {
        let list = try redis.command(["CLIENT", "LIST"]).string ?? ""
        return list.split(whereSeparator: \.isNewline).count - 1
    }

    /// Polls `condition` every 20 ms for up to `timeout` seconds.
    static func waitUntil(timeout: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return try condition()
    }

    /// Redis blocked (`DEBUG SLEEP`) while the refresher's first look for a
    /// published set is inside hiredis: `stop` waits for that call to return
    /// and the thread to end, and only then closes the connection.
    func testRefresherStopWaitsForItsThreadBeforeClosingTheConnection() throws {
        let cluster = try LocalCluster(withBroker: false, redisArguments: ["--enable-debug-command", "yes"])
        defer { cluster.stop() }
        let target = try RedisTarget(url: cluster.redisURL)
        let redis = try RedisConnection(url: cluster.redisURL)
        // Another connection puts the server to sleep; ours waits it out.
        let url = cluster.redisURL
        let sleeper = Thread {
            guard let connection = try? RedisConnection(url: url, commandTimeoutMs: 10_000) else { return }
            _ = try? connection.command(["DEBUG", "SLEEP", "1.5"])
        }
        sleeper.start()
        Thread.sleep(forTimeInterval: 0.2)  // DEBUG SLEEP reached the server
        let refresher = EmbeddingRefresher(config: CooccurrenceConfig(dimension: 4), finalIterations: 4,
                                           redis: target, shared: SharedVectorSet(keys: RedisKeys(prefix: "", group: "g")))
        Thread.sleep(forTimeInterval: 0.3)  // its HMGET is waiting for the sleeping server
        refresher.stop()
        XCTAssertTrue(refresher.threadExited, "stop returns only once the refresher's thread has ended")
        XCTAssertTrue(try Self.waitUntil(timeout: 10) { try Self.otherClients(redis) == 0 },
                      "the refresher's connection is closed after its thread ended")
        refresher.stop()  // idempotent
        XCTAssertEqual(refresher.takeFailures().filter { !$0.contains("loading the published vectors") }, [])
    }

    /// A writer retrying a refused write (READONLY) when the processor stops:
    /// `stop` abandons the batch, joins the thread and closes its connection.
    func testWriterStopDuringReadOnlyRetriesJoinsItsThreadAndClosesTheConnection() throws {
        let cluster = try LocalCluster(withBroker: false)
        defer { cluster.stop() }
        let endpoint = try RedisEndpoint(url: cluster.redisURL)
        let redis = try RedisConnection(endpoint: endpoint)
        let task = TaskId(stage: .items, partition: 0)
        let keys = RedisKeys(prefix: "", group: "g")
        // The task's epoch, so that the fenced write gets as far as writing.
        XCTAssertEqual(try redis.command(["INCR", keys.epoch(task)]).int, 1)
        let nowhere = try LocalCluster.freePort()
        _ = try redis.command(["REPLICAOF", "127.0.0.1", "\(nowhere)"])
        defer { _ = try? redis.command(["REPLICAOF", "NO", "ONE"]) }
        let stopping = StopFlag()
        let writer = try RedisWriter(endpoint: endpoint, observer: FencingTests.NullObserver(), giveUp: { stopping.isSet })
        writer.start()
        XCTAssertTrue(writer.isRunning)
        var write = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
        write.hashSet("item:i1", [("popularity_7d", "1")])
        writer.submit(RedisWriter.Batch(writes: [write]))
        XCTAssertTrue(Self.waitUntil(timeout: 30) { writer.unhealthyReason?.contains("READONLY") ?? false },
                      "the writer retries the refused write: \(writer.unhealthyReason ?? "healthy")")
        stopping.set()
        writer.stop()
        XCTAssertFalse(writer.isRunning, "stop returns only once the writer's thread has ended")
        XCTAssertNotNil(writer.abandonedReason, "the refused batch was abandoned, not written")
        XCTAssertTrue(try Self.waitUntil(timeout: 10) { try Self.otherClients(redis) == 0 },
                      "the writer's connection is closed after its thread ended")
        writer.stop()  // idempotent
        XCTAssertEqual(try redis.command(["EXISTS", "item:i1"]).int, 0)
    }
}
