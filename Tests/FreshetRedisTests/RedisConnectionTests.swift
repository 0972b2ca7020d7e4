import XCTest
import FreshetRedis
import FreshetTestSupport

final class RedisConnectionTests: RedisServerTestCase {
    func testPipelineOf10000HSETsReadsBackEqual() throws {
        let connection = try connect()
        var pipeline = RedisPipeline()
        for n in 0..<10_000 {
            pipeline.add(.hset("user:\(n)", [("interaction_count", String(n)), ("updated_ms", String(1_732_700_000_000 + n))]))
        }
        let replies = try connection.execute(pipeline)
        XCTAssertEqual(replies.count, 10_000)
        XCTAssertTrue(replies.allSatisfy { $0 == .integer(2) })

        var reads = RedisPipeline()
        for n in 0..<10_000 { reads.add(.hgetall("user:\(n)")) }
        let values = try connection.execute(reads)
        XCTAssertEqual(values.count, 10_000)
        for (n, reply) in values.enumerated() {
            let fields = Dictionary(uniqueKeysWithValues: (reply.fieldValuePairs ?? []).map { ($0.field, String(decoding: $0.value, as: UTF8.self)) })
            XCTAssertEqual(fields, ["interaction_count": String(n), "updated_ms": String(1_732_700_000_000 + n)], "user:\(n)")
        }
        XCTAssertEqual(try connection.command(["DBSIZE"]), .integer(10_000))
    }

    func testBinarySafeValuesWithZeroBytes() throws {
        let connection = try connect()
        // A float32 little-endian embedding: contains zero bytes, CR and LF.
        let floats: [Float] = [0, 1, -2.5, .leastNonzeroMagnitude, 13.0 / 10.0]
        let blob = floats.flatMap { value -> [UInt8] in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
        let tricky: [UInt8] = [0, 13, 10, 0, 255, 36, 42, 0]
        var pipeline = RedisPipeline()
        pipeline.add(.hset("item:9", [("embedding_5d", blob), ("weird\u{0}field", tricky)]))
        pipeline.add(.set("raw", tricky))
        _ = try connection.execute(pipeline)

        let fields = try connection.hgetall("item:9")
        XCTAssertEqual(fields.count, 2)
        XCTAssertEqual(fields.first { $0.field == "embedding_5d" }?.value, blob)
        XCTAssertEqual(fields.first { $0.field == "weird\u{0}field" }?.value, tricky)
        XCTAssertEqual(try connection.command(.get("raw")), .bulk(tricky))

        // Low-level binary append (redisAppendCommandArgv with explicit lengths).
        try connection.append([Array("SET".utf8), [0, 0, 1], tricky])
        try connection.append([Array("GET".utf8), [0, 0, 1]])
        try connection.append(["STRLEN", "raw"])
        XCTAssertEqual(connection.pendingReplies, 3)
        XCTAssertEqual(try connection.readReplies(count: 3), [.status("OK"), .bulk(tricky), .integer(Int64(tricky.count))])
        XCTAssertEqual(connection.pendingReplies, 0)
        XCTAssertEqual(try connection.command([[UInt8]]([Array("GET".utf8), [0, 0, 1]])), .bulk(tricky))
    }

    func testErrorRepliesInAPipelineDoNotBreakTheFollowingReplies() throws {
        let connection = try connect()
        var pipeline = RedisPipeline()
        pipeline.add(.set("s", "text"))
        pipeline.add(.hset("s", [("f", "v")]))          // WRONGTYPE
        pipeline.add(RedisCommand("NOSUCHCOMMAND", "x"))  // ERR unknown command
        pipeline.add(.evalsha(String(repeating: "0", count: 40), keys: [], args: [])) // NOSCRIPT
        pipeline.add(.get("s"))
        pipeline.add(.get("missing"))
        pipeline.add(.multi)
        pipeline.add(.set("t", "1"))
        pipeline.add(RedisCommand("INCR", "t"))
        pipeline.add(.exec)
        let replies = try connection.execute(pipeline)
        XCTAssertEqual(replies.count, 10)
        XCTAssertEqual(replies[0], .status("OK"))
        XCTAssertEqual(replies[1].errorMessage.map(RedisError.serverErrorPrefix), "WRONGTYPE")
        XCTAssertEqual(replies[2].errorMessage.map(RedisError.serverErrorPrefix), "ERR")
        XCTAssertEqual(replies[3].errorMessage.map(RedisError.serverErrorPrefix), "NOSCRIPT")
        XCTAssertEqual(replies[4].string, "text")
        XCTAssertEqual(replies[5], .null)
        XCTAssertEqual(replies[6], .status("OK"))
        XCTAssertEqual(replies[7], .status("QUEUED"))
        XCTAssertEqual(replies[9], .array([.status("OK"), .integer(2)]))
        XCTAssertTrue(connection.isConnected)

        // A single command throws the server error, typed by prefix.
        XCTAssertThrowsError(try connection.command(.hset("s", [("f", "v")]))) { error in
            XCTAssertEqual((error as? RedisError)?.kind, .server("WRONGTYPE"))
            XCTAssertEqual((error as? RedisError)?.isRetriable, false)
        }
        XCTAssertEqual(try connection.command(.get("t")).int, 2)
    }

    func testEvalScriptFallsBackToScriptLoadOnNOSCRIPT() throws {
        let connection = try connect()
        let script = RedisScript("""
            redis.call('HSET', KEYS[1], 'popularity_7d', ARGV[1], 'updated_ms', ARGV[2])
            return redis.call('HLEN', KEYS[1])
            """)
        XCTAssertEqual(try connection.command(["SCRIPT", "EXISTS", script.sha1]), .array([.integer(0)]))
        XCTAssertEqual(try connection.evalScript(script, keys: ["item:1"], args: ["7", "1000"]), .integer(2))
        XCTAssertEqual(try connection.command(["SCRIPT", "EXISTS", script.sha1]), .array([.integer(1)]))
        XCTAssertEqual(try connection.command(["HGET", "item:1", "popularity_7d"]).int, 7)

        // The server's SHA-1 equals ours.
        _ = try connection.command(["SCRIPT", "FLUSH"])
        XCTAssertEqual(try connection.command(.scriptLoad(script)).string, script.sha1)

        // Pipelined after loadScript; binary args.
        _ = try connection.command(["SCRIPT", "FLUSH"])
        try connection.loadScript(script)
        var pipeline = RedisPipeline()
        pipeline.add(.evalsha(script, keys: ["item:2"], args: ["1", "2"]))
        pipeline.add(.evalsha(script, keys: ["item:3"], binaryArgs: [[0, 1], [2]]))
        XCTAssertEqual(try connection.execute(pipeline), [.integer(2), .integer(2)])

        // Script errors throw with the server prefix.
        let broken = RedisScript("return redis.call('NOSUCH')")
        XCTAssertThrowsError(try connection.evalScript(broken)) { error in
            guard case .server = (error as? RedisError)?.kind else { return XCTFail("\(error)") }
        }
    }

    func testHscanAndSelectAndUnixSocket() throws {
        let connection = try connect()
        var pipeline = RedisPipeline()
        pipeline.add(.hset("big", (0..<1000).map { ("f\($0)", "v\($0)") }))
        _ = try connection.execute(pipeline)
        var cursor: UInt64 = 0
        var seen: [String: String] = [:]
        repeat {
            let page = try connection.hscan(key: "big", cursor: cursor, count: 100)
            for (field, value) in page.fields { seen[field] = String(decoding: value, as: UTF8.self) }
            cursor = page.cursor
        } while cursor != 0
        XCTAssertEqual(seen.count, 1000)
        XCTAssertEqual(seen["f417"], "v417")

        var db5 = server.endpoint
        db5.database = 5
        let other = try connect(db5)
        try other.command(.set("only-in-5", "x"))
        XCTAssertEqual(try connection.command(.get("only-in-5")), .null)
        let unix = try connect(try RedisEndpoint(url: "unix://\(server.unixSocketPath)?db=5"))
        XCTAssertEqual(try unix.command(.get("only-in-5")).string, "x")
    }

    func testCommandTimeoutClosesTheConnection() throws {
        let connection = try RedisConnection(endpoint: server.endpoint, commandTimeoutMs: 200)
        XCTAssertThrowsError(try connection.command(["BLPOP", "nothing", "2"])) { error in
            XCTAssertEqual((error as? RedisError)?.kind, .timeout, "\(error)")
            XCTAssertEqual((error as? RedisError)?.isRetriable, true)
        }
        XCTAssertFalse(connection.isConnected)
        XCTAssertThrowsError(try connection.ping()) { XCTAssertEqual(($0 as? RedisError)?.kind, .connection) }
        try connection.reconnect()
        try connection.ping()
    }

    func testConnectionRefusedAndTLSUnsupported() throws {
        let port = try LocalCluster.freePort()
        XCTAssertThrowsError(try RedisConnection(endpoint: RedisEndpoint(host: "127.0.0.1", port: port))) { error in
            XCTAssertEqual((error as? RedisError)?.kind, .connection, "\(error)")
            XCTAssertEqual((error as? RedisError)?.isRetriable, true)
        }
        XCTAssertThrowsError(try RedisConnection(url: "rediss://127.0.0.1:\(server.port)")) { error in
            XCTAssertEqual((error as? RedisError)?.kind, .unsupported)
            XCTAssertTrue((error as? RedisError)?.message.contains("hiredis 0.14") ?? false)
        }
        XCTAssertThrowsError(try ReconnectingRedis(endpoint: RedisEndpoint(url: "rediss://h"))) { error in
            XCTAssertEqual((error as? RedisError)?.kind, .unsupported)
        }
    }

    func testServerKilledMidConnectionIsARetriableErrorNotACrash() throws {
        let connection = try connect()
        try connection.ping()
        server.kill()
        var pipeline = RedisPipeline()
        for n in 0..<100 { pipeline.add(.set("k\(n)", "v")) }
        XCTAssertThrowsError(try connection.execute(pipeline)) { error in
            let redisError = error as? RedisError
            XCTAssertEqual(redisError?.isRetriable, true, "\(error)")
            XCTAssertEqual(redisError?.requiresReconnect, true)
        }
        XCTAssertFalse(connection.isConnected)
    }
}

final class RedisAuthenticationTests: RedisServerTestCase {
    func testACLUserAndWrongPassword() throws {
        let admin = try connect()
        try admin.command(["ACL", "SETUSER", "freshet", "on", ">s3cr:t@pw", "~*", "&*", "+@all"])

        let user = try RedisConnection(url: "redis://freshet:s3cr%3At%40pw@127.0.0.1:\(server.port)/2")
        XCTAssertEqual(try user.command(["ACL", "WHOAMI"]).string, "freshet")
        try user.command(.set("k", "v"))
        XCTAssertEqual(try user.command(.get("k")).string, "v")

        XCTAssertThrowsError(try RedisConnection(url: "redis://freshet:wrong@127.0.0.1:\(server.port)")) { error in
            let redisError = error as? RedisError
            XCTAssertEqual(redisError?.kind, .authentication, "\(error)")
            XCTAssertEqual(redisError?.isRetriable, false)
            XCTAssertFalse(redisError?.description.contains("wrong") ?? true, "password leaked: \(error)")
        }

        // Default user with requirepass: NOAUTH without a password, success with `:password@`.
        try admin.command(["CONFIG", "SET", "requirepass", "adminpw"])
        let anonymous = try connect()
        XCTAssertThrowsError(try anonymous.ping()) { XCTAssertEqual(($0 as? RedisError)?.kind, .authentication) }
        let withPassword = try RedisConnection(url: "redis://:adminpw@127.0.0.1:\(server.port)")
        try withPassword.ping()
    }
}
