import Foundation
import XCTest
import FreshetRedis
import FreshetTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `RedisConnection.executeTransaction`, which reads replies through
/// `ReplySummary`'s object functions instead of hiredis's reply objects,
/// against a real Redis: the outcome equals what the full replies of the
/// same transaction (read as a plain pipeline) say, and the reader's own
/// functions are back for the next command, also after failures.
final class TransactionReplyTests: RedisServerTestCase {
    /// What `executeTransaction` must answer, from the full replies of
    /// `MULTI`, the body and `EXEC` read as a pipeline (the reading before
    /// the summaries).
    private func expected(_ replies: [RedisReply]) -> TransactionReply {
        let queueErrors = replies.dropLast().compactMap(\.errorMessage)
        switch replies.last {
        case .array(let elements)?:
            let errors = elements.enumerated().compactMap { index, element in
                element.errorMessage.map { TransactionOutcome.Failure(index: index, message: $0) }
            }
            return .ran(TransactionOutcome(count: elements.count, errors: errors))
        case .null?:
            return .aborted
        case .error(let message)?:
            return .discarded(execError: message, queueErrors: queueErrors)
        default:
            return .discarded(execError: "unexpected", queueErrors: queueErrors)
        }
    }

    private func framed(_ body: RedisPipeline) -> RedisPipeline {
        var pipeline = RedisPipeline()
        pipeline.add(.multi)
        pipeline.add(contentsOf: body)
        pipeline.add(.exec)
        return pipeline
    }

    /// Everything an EXEC array can hold, errors at the top and deeper:
    /// only the direct elements that are errors are listed, by position.
    func testAMixedExecArrayGivesTheSameOutcomeAsTheFullReplies() throws {
        let connection = try connect()
        _ = try connection.command(["SET", "s", "text"])
        _ = try connection.command(["RPUSH", "l", "a", "b"])
        var body = RedisPipeline()
        body.add(RedisCommand("INCR", "n"))                                   // integer
        body.add(RedisCommand("HSET", "s", "f", "v"))                         // WRONGTYPE error
        body.add(RedisCommand("PING"))                                        // status
        body.add(RedisCommand("GET", "s"))                                    // bulk string
        body.add(RedisCommand("GET", "missing"))                              // nil
        body.add(RedisCommand("LRANGE", "l", "0", "-1"))                      // array
        body.add(RedisCommand("EVAL", "return {1, redis.error_reply('DEEP inside'), {2, 'x'}}", "0"))  // nested, error inside
        body.add(RedisCommand("EVAL", "return redis.error_reply('MINE at the top')", "0"))            // error element
        body.add(RedisCommand("LRANGE", "empty", "0", "-1"))                  // empty array
        body.add(RedisCommand("INCR", "s"))                                   // ERR not an integer

        let reference = expected(try connection.execute(framed(body)))
        let outcome = try connection.executeTransaction(body)
        XCTAssertEqual(outcome, reference)
        guard case .ran(let ran) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(ran.count, 10)
        XCTAssertEqual(ran.errors.map(\.index), [1, 7, 9])
        XCTAssertEqual(ran.errors.map { RedisError.serverErrorPrefix($0.message) }, ["WRONGTYPE", "MINE", "ERR"])
        XCTAssertEqual(ran.errors[1].message, "MINE at the top")
        XCTAssertEqual(try connection.command(["GET", "n"]), .bulk(Array("2".utf8)), "both transactions ran")
        try assertFullRepliesAreBack(connection)
    }

    /// A command refused when queued (wrong arity): EXEC answers
    /// EXECABORT, nothing applies, and the refusal is reported.
    func testAQueueTimeErrorDiscardsTheTransaction() throws {
        let connection = try connect()
        var body = RedisPipeline()
        body.add(RedisCommand("SET", "a", "1"))
        body.add(RedisCommand("GET"))  // wrong number of arguments
        body.add(RedisCommand("SET", "b", "2"))

        let reference = expected(try connection.execute(framed(body)))
        let outcome = try connection.executeTransaction(body)
        XCTAssertEqual(outcome, reference)
        guard case .discarded(let execError, let queueErrors) = outcome else { return XCTFail("\(outcome)") }
        XCTAssertEqual(RedisError.serverErrorPrefix(execError), "EXECABORT")
        XCTAssertEqual(queueErrors.count, 1)
        XCTAssertTrue(queueErrors.first?.contains("wrong number of arguments") ?? false, "\(queueErrors)")
        XCTAssertEqual(try connection.command(["EXISTS", "a", "b"]), .integer(0))
        try assertFullRepliesAreBack(connection)
    }

    /// A WATCHed key changed before EXEC: EXEC answers nil, nothing applies.
    func testExecNilAfterAWatchedKeyChanged() throws {
        let connection = try connect()
        let other = try connect()
        var body = RedisPipeline()
        body.add(RedisCommand("SET", "x", "1"))
        _ = try connection.command(["WATCH", "epoch"])
        _ = try other.command(["SET", "epoch", "2"])
        XCTAssertEqual(try connection.executeTransaction(body), .aborted)
        XCTAssertEqual(try connection.command(["EXISTS", "x"]), .integer(0))
        try assertFullRepliesAreBack(connection)
        // Unwatched, the same transaction applies.
        XCTAssertEqual(try connection.executeTransaction(body), .ran(TransactionOutcome(count: 1, errors: [])))
        XCTAssertEqual(try connection.command(["GET", "x"]), .bulk(Array("1".utf8)))
    }

    /// More commands than one round (`executeChunkSize`): every queued
    /// reply is read before EXEC's, errors keep their positions.
    func testATransactionLongerThanOneRoundKeepsPositions() throws {
        let connection = try connect()
        connection.executeChunkSize = 7
        _ = try connection.command(["SET", "s", "text"])
        var body = RedisPipeline()
        for n in 0..<50 {
            body.add(n % 9 == 4 ? RedisCommand("HSET", "s", "f", "v") : RedisCommand("HSET", "h\(n)", "f", "\(n)"))
        }
        let outcome = try connection.executeTransaction(body)
        XCTAssertEqual(outcome, .ran(TransactionOutcome(count: 50, errors: [4, 13, 22, 31, 40, 49].map {
            TransactionOutcome.Failure(index: $0, message: "WRONGTYPE Operation against a key holding the wrong kind of value")
        })))
        XCTAssertEqual(try connection.command(["HGET", "h48", "f"]), .bulk(Array("48".utf8)))
        XCTAssertEqual(connection.pendingReplies, 0)
        try assertFullRepliesAreBack(connection)
    }

    /// One round of several MiB (written with `writev` straight from the
    /// body's buffer, more than a socket buffer holds): everything lands.
    func testALargeTransactionIsWrittenWhole() throws {
        let connection = try connect()
        connection.executeChunkSize = 100_000
        let value = String(repeating: "v", count: 250)
        var body = RedisPipeline()
        for n in 0..<20_000 { body.add(RedisCommand("HSET", "big:\(n)", "f", "\(n)\(value)")) }
        XCTAssertGreaterThan(body.byteCount, 5_000_000)
        XCTAssertEqual(try connection.executeTransaction(body), .ran(TransactionOutcome(count: 20_000, errors: [])))
        XCTAssertEqual(try connection.command(["DBSIZE"]), .integer(20_000))
        XCTAssertEqual(try connection.command(["HGET", "big:19999", "f"]), .bulk(Array("19999\(value)".utf8)))
        try assertFullRepliesAreBack(connection)
    }

    /// The server is gone before the transaction: a retriable error that
    /// asks for a reconnect (no SIGPIPE, no crash), and nothing pending.
    func testAServerGoneBeforeTheTransactionIsARetriableError() throws {
        let connection = try connect()
        try connection.ping()
        server.kill()
        var body = RedisPipeline()
        for n in 0..<1_000 { body.add(RedisCommand("SET", "k\(n)", "v")) }
        XCTAssertThrowsError(try connection.executeTransaction(body)) { error in
            XCTAssertEqual((error as? RedisError)?.isRetriable, true, "\(error)")
            XCTAssertEqual((error as? RedisError)?.requiresReconnect, true, "\(error)")
        }
        XCTAssertFalse(connection.isConnected)
        XCTAssertEqual(connection.pendingReplies, 0)
    }

    /// EXEC times out (a slow script in the transaction): the error is a
    /// timeout, the connection is closed with the summarizing functions
    /// still installed, and a reconnected one reads full replies.
    func testATimeoutWhileReadingClosesAndTheNextConnectionReadsFullReplies() throws {
        let connection = try RedisConnection(endpoint: server.endpoint, commandTimeoutMs: 150)
        var body = RedisPipeline()
        body.add(RedisCommand("EVAL", """
            local start = redis.call('TIME')
            repeat local now = redis.call('TIME') until (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 600000
            return 1
            """, "0"))
        XCTAssertThrowsError(try connection.executeTransaction(body)) { error in
            XCTAssertEqual((error as? RedisError)?.kind, .timeout, "\(error)")
        }
        XCTAssertFalse(connection.isConnected)
        // A connection with the default timeout (the script still runs for a while).
        let next = try connect()
        try assertFullRepliesAreBack(next)
        try connection.reconnect()
        try assertFullRepliesAreBack(connection)
    }

    /// The server goes away in the middle of EXEC's array: hiredis holds a
    /// half-built reply made by the summarizing functions when the context
    /// is freed; that must neither crash nor leak into the next connection.
    func testAConnectionLostInsideTheExecArrayIsAConnectionError() throws {
        let fake = try HalfReplyServer(replies: "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:1\r\n")
        let connection = try RedisConnection(endpoint: RedisEndpoint(host: "127.0.0.1", port: fake.port), commandTimeoutMs: 5000)
        var body = RedisPipeline()
        body.add(RedisCommand("INCR", "a"))
        body.add(RedisCommand("INCR", "b"))
        XCTAssertThrowsError(try connection.executeTransaction(body)) { error in
            XCTAssertEqual((error as? RedisError)?.requiresReconnect, true, "\(error)")
        }
        XCTAssertFalse(connection.isConnected)
        fake.wait()
        let real = try connect()
        try assertFullRepliesAreBack(real)
    }

    /// Plain commands on `connection` get full reply trees again.
    private func assertFullRepliesAreBack(_ connection: RedisConnection, file: StaticString = #filePath, line: UInt = #line) throws {
        _ = try connection.command(["DEL", "check:h"])
        _ = try connection.command(["HSET", "check:h", "f", "v"])
        XCTAssertEqual(try connection.command(["HGETALL", "check:h"]), .array([.bulk(Array("f".utf8)), .bulk(Array("v".utf8))]),
                       file: file, line: line)
        XCTAssertEqual(try connection.command(["PING"]), .status("PONG"), file: file, line: line)
        XCTAssertEqual(try connection.execute(RedisPipeline([RedisCommand("HSET", "check:h", "f", "w"), RedisCommand("HGET", "check:h", "f")])),
                       [.integer(0), .bulk(Array("w".utf8))], file: file, line: line)
    }
}

/// A one-connection TCP server on 127.0.0.1 that reads until it has seen
/// `EXEC`, answers `replies` (meant to stop inside a reply) and hangs up.
private final class HalfReplyServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let done = DispatchSemaphore(value: 0)

    init(replies: String) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 1) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        self.listener = listener
        let done = done
        Thread.detachNewThread {
            defer { done.signal() }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            defer { Glibc.close(client) }
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !String(decoding: received, as: UTF8.self).contains("EXEC") {
                let count = chunk.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
                guard count > 0 else { return }
                received += chunk[0..<count]
            }
            let bytes = Array(replies.utf8)
            _ = bytes.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
        }
    }

    /// Waits until the connection was answered and closed.
    func wait() {
        done.wait()
        Glibc.close(listener)
    }
}
