import Foundation
import XCTest
import FreshetRedis
import FreshetTestSupport

final class ReconnectingRedisTests: RedisServerTestCase {
    func testSurvivesServerRestartOnTheSamePort() throws {
        let script = RedisScript("redis.call('HSET', KEYS[1], 'v', ARGV[1]); return 1")
        let started = Date()
        let redis = try ReconnectingRedis(endpoint: server.endpoint, connectTimeoutMs: 300, commandTimeoutMs: 1000,
                                          shouldStop: { Date().timeIntervalSince(started) > 60 })
        redis.registerScript(script)
        XCTAssertFalse(redis.isHealthy)

        var before = RedisPipeline()
        before.add(.hset("user:before", [("interaction_count", "1")]))
        before.add(.evalsha(script, keys: ["scripted:before"], args: ["a"]))
        XCTAssertEqual(try redis.execute(before), [.integer(1), .integer(1)])
        XCTAssertTrue(redis.isHealthy)

        server.kill()
        let killedAt = Date()
        var after = RedisPipeline()
        for n in 0..<1000 { after.add(.hset("user:\(n)", [("interaction_count", String(n))])) }
        after.add(.evalsha(script, keys: ["scripted:after"], args: ["b"]))

        var retries: [(RedisError, Int)] = []
        var restartedAt: Date?
        let replies = try redis.execute(after) { error, attempt in
            retries.append((error, attempt))
            if restartedAt == nil && Date().timeIntervalSince(killedAt) >= 1.0 {
                try? self.server.start()
                restartedAt = Date()
            }
        }
        XCTAssertNotNil(restartedAt)
        XCTAssertGreaterThan(retries.count, 2)
        XCTAssertTrue(retries.allSatisfy { $0.0.isRetriable })
        XCTAssertEqual(retries.map(\.1), Array(1...retries.count))
        XCTAssertEqual(replies.count, 1001)
        XCTAssertTrue(replies.dropLast().allSatisfy { $0 == .integer(1) })
        XCTAssertEqual(replies.last, .integer(1)) // EVALSHA works: the script was reloaded after reconnect
        XCTAssertTrue(redis.isHealthy)
        XCTAssertEqual(redis.reconnectCount, 1)
        print("ReconnectingRedis: \(retries.count) retries, recovered \(String(format: "%.2f", Date().timeIntervalSince(killedAt))) s after the kill; errors: \(Set(retries.map { "\($0.0.kind)" }).sorted())")

        // Data written after the restart is there (the server has no persistence: earlier data is gone).
        let check = try connect()
        XCTAssertEqual(try check.command(["HGET", "user:417", "interaction_count"]).int, 417)
        XCTAssertEqual(try check.command(["HGET", "scripted:after", "v"]).string, "b")
        XCTAssertEqual(try check.command(["EXISTS", "user:before"]), .integer(0))
    }

    /// `executeOnce` never waits in the back-off, whatever `shouldStop` says
    /// (here: never stop): a READONLY refusal and an unreachable server throw
    /// at once, and the next call reconnects and goes through.
    func testExecuteOnceMakesOneAttemptWithoutBackOff() throws {
        var asked = 0
        let redis = try ReconnectingRedis(endpoint: server.endpoint, connectTimeoutMs: 300,
                                          backoff: .init(initialMs: 60_000, maximumMs: 60_000),
                                          shouldStop: { asked += 1; return false })
        var write = RedisPipeline()
        write.add(.set("floor", "0:1"))
        XCTAssertEqual(try redis.executeOnce(write), [.status("OK")])

        let admin = try connect()
        let nowhere = try LocalCluster.freePort()
        _ = try admin.command(["REPLICAOF", "127.0.0.1", "\(nowhere)"])
        XCTAssertThrowsError(try redis.executeOnce(write)) { error in
            XCTAssertEqual((error as? RedisError)?.kind, .server("READONLY"), "\(error)")
        }
        XCTAssertFalse(redis.isHealthy)
        _ = try admin.command(["REPLICAOF", "NO", "ONE"])
        XCTAssertEqual(try redis.executeOnce(write), [.status("OK")])

        server.kill()
        XCTAssertThrowsError(try redis.executeOnce(write)) { error in
            XCTAssertTrue((error as? RedisError)?.isRetriable ?? false, "a connection failure: \(error)")
        }
        try server.start()
        XCTAssertEqual(try redis.executeOnce(write), [.status("OK")], "the next call reconnects")
        XCTAssertEqual(asked, 0, "no attempt consulted shouldStop: none waited to retry")
    }

    /// The eviction setting as `INFO memory` reports it (the processor
    /// refuses a Redis that may evict any key).
    func testEvictionSettingsAreReadFromTheServer() throws {
        let redis = try ReconnectingRedis(endpoint: server.endpoint)
        XCTAssertEqual(try redis.evictionSettings(onRetry: { _, _ in }).values.first,
                       RedisEvictionSetting(policy: "noeviction", maxmemoryBytes: 0), "Redis's defaults")
        let admin = try connect()
        _ = try admin.command(["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
        _ = try admin.command(["CONFIG", "SET", "maxmemory", "64mb"])
        defer {
            _ = try? admin.command(["CONFIG", "SET", "maxmemory-policy", "noeviction"])
            _ = try? admin.command(["CONFIG", "SET", "maxmemory", "0"])
        }
        let setting = try XCTUnwrap(try redis.evictionSettings(onRetry: { _, _ in }).values.first)
        XCTAssertEqual(setting, RedisEvictionSetting(policy: "allkeys-lru", maxmemoryBytes: 64 << 20))
        XCTAssertTrue(setting.evictsKeysWithoutTTL)
        XCTAssertFalse(RedisEvictionSetting(policy: "volatile-lru", maxmemoryBytes: 1).evictsKeysWithoutTTL)
    }

    func testShouldStopEndsRetrying() throws {
        var stop = false
        let redis = try ReconnectingRedis(endpoint: server.endpoint, connectTimeoutMs: 200,
                                          backoff: .init(initialMs: 10, maximumMs: 40), shouldStop: { stop })
        var pipeline = RedisPipeline()
        pipeline.add(.set("k", "v"))
        _ = try redis.execute(pipeline)
        server.kill()
        var attempts = 0
        XCTAssertThrowsError(try redis.execute(pipeline) { _, attempt in
            attempts = attempt
            if attempt == 3 { stop = true }
        }) { error in
            XCTAssertEqual((error as? RedisError)?.isRetriable, true, "\(error)")
        }
        XCTAssertEqual(attempts, 3)
        XCTAssertFalse(redis.isHealthy)
    }

    func testNonRetriableErrorsThrowAtOnceAndScriptFlushIsHealed() throws {
        let script = RedisScript("return ARGV[1]")
        let redis = try ReconnectingRedis(endpoint: server.endpoint)
        redis.registerScript(script)
        var retried = 0
        // A server error inside a pipeline is a reply, not a retry.
        var pipeline = RedisPipeline()
        pipeline.add(.set("s", "x"))
        pipeline.add(RedisCommand("HGETALL", "s"))
        let replies = try redis.execute(pipeline) { _, _ in retried += 1 }
        XCTAssertEqual(replies[1].errorMessage.map(RedisError.serverErrorPrefix), "WRONGTYPE")
        XCTAssertEqual(retried, 0)

        // SCRIPT FLUSH behind our back: NOSCRIPT reloads the scripts and resends.
        _ = try connect().command(["SCRIPT", "FLUSH"])
        var scripted = RedisPipeline()
        scripted.add(.evalsha(script, keys: [], args: ["hello"]))
        XCTAssertEqual(try redis.execute(scripted) { _, _ in retried += 1 }, [.bulk(Array("hello".utf8))])
        XCTAssertEqual(retried, 1)

        // withConnection for reads.
        let value = try redis.withConnection { connection throws(RedisError) in try connection.command(.get("s")) }
        XCTAssertEqual(value.string, "x")
    }

    func testBackoffSchedule() {
        let backoff = ReconnectingRedis.Backoff()
        XCTAssertEqual((1...8).map { backoff.delayMs(attempt: $0) }, [50, 100, 200, 400, 800, 1600, 2000, 2000])
        XCTAssertEqual(backoff.delayMs(attempt: 1000), 2000)
    }
}

final class RedisBenchmarkTests: RedisServerTestCase {
    func testPipelinedHSETThroughput() throws {
        let result = try RedisBenchmark.run(endpoint: server.endpoint, commands: 200_000, pipelineSize: 1000)
        print("RedisBenchmark: \(result)")
        XCTAssertEqual(result.commands, 200_000)
        XCTAssertEqual(try connect().command(["DBSIZE"]), .integer(0))
    }
}
