import Foundation
import FreshetRedis
import FreshetTestSupport
@testable import FreshetRuntime
import XCTest

/// Fenced writes as WATCH/MULTI/EXEC transactions (`FencedTransaction`,
/// `RedisStore.executeWatched`) against a real Redis.
final class FencedTransactionTests: XCTestCase {
    var cluster: LocalCluster!
    var endpoint: RedisEndpoint!
    var redis: RedisConnection!
    let keys = RedisKeys(prefix: "", group: "g")

    override func setUpWithError() throws {
        cluster = try LocalCluster(withBroker: false)
        endpoint = try RedisEndpoint(url: "redis://127.0.0.1:\(cluster.redisPort)")
        redis = try RedisConnection(endpoint: endpoint)
    }

    override func tearDown() {
        cluster?.stop()
    }

    func testAWrongTypeKeyIsRejectedAndEveryOtherOperationApplies() throws {
        let task = TaskId(stage: .items, partition: 0)
        XCTAssertEqual(try redis.command(["INCR", keys.epoch(task)]).int, 1)
        _ = try redis.command(["SET", "item:bad", "a string"])
        _ = try redis.command(["HSET", "item:gone", "f", "v"])
        _ = try redis.command(["HSET", "item:field", "keep", "1", "drop", "2"])
        var write = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
        write.hashSet("item:bad", [("popularity_7d", "3")])
        write.hashSet("item:good", [("popularity_7d", "4"), ("impressions_7d", "9")])
        write.delete("item:gone")
        write.hashDelete("item:field", field: "drop")
        write.sortedSetAdd("trending", score: 2.5, member: "good")
        let store = try ReconnectingRedis(endpoint: endpoint)
        let replies = try FencedTransaction.apply([write], through: store, onRetry: { _, _ in })

        guard case .applied(let rejected)? = replies.first else { return XCTFail("\(replies)") }
        XCTAssertEqual(rejected.map(\.key), ["item:bad"])
        XCTAssertEqual(rejected.first?.reason, "WRONGTYPE")
        XCTAssertEqual(try redis.command(["GET", "item:bad"]).string, "a string")
        XCTAssertEqual(try redis.command(["HGET", "item:good", "impressions_7d"]).string, "9")
        XCTAssertEqual(try redis.command(["EXISTS", "item:gone"]).int, 0)
        XCTAssertEqual(try redis.command(["HKEYS", "item:field"]).array?.compactMap(\.string), ["keep"])
        XCTAssertEqual(try redis.command(["ZSCORE", "trending", "good"]).string, "2.5")
    }

    func testStaleAndMissingEpochsAreRefusedWithoutWritingWhileTheCurrentOneApplies() throws {
        let owned = TaskId(stage: .items, partition: 1)
        let taken = TaskId(stage: .items, partition: 2)
        let lost = TaskId(stage: .items, partition: 3)
        _ = try redis.command(["SET", keys.epoch(owned), "5"])
        _ = try redis.command(["SET", keys.epoch(taken), "8"])
        func write(_ task: TaskId, epoch: Int64, value: String) -> FencedWrite {
            var write = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: epoch)
            write.hashSet("item:\(task.partition)", [("popularity_7d", value)])
            return write
        }
        let store = try ReconnectingRedis(endpoint: endpoint)
        let replies = try FencedTransaction.apply([write(owned, epoch: 5, value: "1"), write(taken, epoch: 7, value: "2"),
                                                  write(lost, epoch: 3, value: "3")], through: store, onRetry: { _, _ in })
        XCTAssertEqual(replies, [.applied(rejected: []), .refusedByEpoch(current: 8), .refusedByEpoch(current: nil)])
        XCTAssertEqual(try redis.command(["HGET", "item:1", "popularity_7d"]).string, "1")
        XCTAssertEqual(try redis.command(["EXISTS", "item:2", "item:3"]).int, 0)
    }

    /// A new owner bumps the epoch after the check read it: EXEC applies
    /// nothing and the round is decided again on the new epoch.
    func testAnEpochChangedBetweenTheCheckAndExecIsDecidedAgain() throws {
        let task = TaskId(stage: .users, partition: 0)
        _ = try redis.command(["SET", keys.epoch(task), "1"])
        let newOwner = try RedisConnection(endpoint: endpoint)
        let store = try ReconnectingRedis(endpoint: endpoint)
        var check = RedisPipeline()
        check.add(RedisCommand("WATCH", keys.epoch(task)))
        check.add(RedisCommand("GET", keys.epoch(task)))
        var seen: [String] = []
        let (checked, outcome) = try store.executeWatched(check: check, transaction: { replies in
            let epoch = replies[1].string ?? "missing"
            seen.append(epoch)
            if seen.count == 1 { _ = try? newOwner.command(["SET", self.keys.epoch(task), "2"]) }
            var transaction = RedisPipeline()
            guard epoch == "1" else { return transaction }  // fenced: write nothing
            transaction.add(RedisCommand("HSET", "user:u", "interaction_count", "99"))
            return transaction
        }, onRetry: { _, _ in })
        XCTAssertEqual(seen, ["1", "2"], "the first decision was not applied; the second saw the new owner's epoch")
        XCTAssertEqual(checked[1].string, "2")
        XCTAssertEqual(outcome, TransactionOutcome(count: 0, errors: []))
        XCTAssertEqual(try redis.command(["EXISTS", "user:u"]).int, 0, "the zombie's write never landed")
    }

    /// Redis refuses queued writes (OOM): the transaction is discarded,
    /// retried with back-off, and nothing is applied.
    func testARefusedTransactionIsRetriedAndAppliesNothing() throws {
        let task = TaskId(stage: .items, partition: 0)
        _ = try redis.command(["SET", keys.epoch(task), "1"])
        _ = try redis.command(["CONFIG", "SET", "maxmemory", "1"])
        defer { _ = try? redis.command(["CONFIG", "SET", "maxmemory", "0"]) }
        var write = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
        write.hashSet("item:i", [("popularity_7d", "1")])
        var attempts = 0
        let store = try ReconnectingRedis(endpoint: endpoint, backoff: .init(initialMs: 1, maximumMs: 5))
        store.shouldStop = { attempts >= 3 }
        XCTAssertThrowsError(try FencedTransaction.apply([write], through: store, onRetry: { _, attempt in attempts = attempt })) { error in
            XCTAssertEqual((error as? RedisError)?.kind, .server("OOM"))
        }
        XCTAssertEqual(attempts, 3)
        _ = try redis.command(["CONFIG", "SET", "maxmemory", "0"])
        XCTAssertEqual(try redis.command(["EXISTS", "item:i"]).int, 0)
        // Once Redis accepts writes again, the same write lands (and the connection is not left in MULTI).
        XCTAssertEqual(try FencedTransaction.apply([write], through: store, onRetry: { _, _ in }), [.applied(rejected: [])])
        XCTAssertEqual(try redis.command(["HGET", "item:i", "popularity_7d"]).string, "1")
    }

    /// Writes beyond the size of one transaction go in several, in order.
    func testGroupsKeepTheWritesOrder() throws {
        let task = TaskId(stage: .items, partition: 0)
        _ = try redis.command(["SET", keys.epoch(task), "1"])
        let writes = (0..<10).map { round -> FencedWrite in
            var write = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: 1)
            write.hashSet("item:i", [("popularity_7d", "\(round)"), ("pad", String(repeating: "x", count: 300))])
            return write
        }
        let store = try ReconnectingRedis(endpoint: endpoint)
        _ = try redis.command(["CONFIG", "RESETSTAT"])
        let replies = try FencedTransaction.apply(writes, through: store, groupBytes: 1_000, onRetry: { _, _ in })
        XCTAssertEqual(replies, Array(repeating: .applied(rejected: []), count: 10))
        XCTAssertEqual(try redis.command(["HGET", "item:i", "popularity_7d"]).string, "9")
        let stats = try redis.command(["INFO", "commandstats"]).string ?? ""
        let execs = stats.split(separator: "\r\n").first { $0.hasPrefix("cmdstat_exec:") }
        XCTAssertNotNil(execs)
        XCTAssertFalse(execs?.hasPrefix("cmdstat_exec:calls=1,") ?? true, "more than one transaction: \(execs ?? "")")
    }
}
