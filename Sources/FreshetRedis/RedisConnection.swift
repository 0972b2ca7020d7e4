import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One blocking connection to Redis over hiredis: connect, AUTH, SELECT,
/// single commands, pipelines and scripts.
///
/// Threading: **owned by one thread.** A hiredis context is not thread-safe,
/// so this class is deliberately not `Sendable`; create it on (or hand it
/// with `sending` to) the thread that uses it, such as the runtime's Redis
/// writer thread.
///
/// Blocking: every method that talks to the server blocks the calling thread
/// for up to the connect or command timeout. Never call them from Swift's
/// cooperative pool (an `async` context); run them on a dedicated thread.
///
/// Errors: server error replies are *values* in pipelines (`.error` in the
/// command's slot) and *thrown* from the single-command methods
/// (`command`, `evalScript`, `hgetall`, `hscan`, `loadScript`). I/O, protocol
/// and timeout failures always throw and leave the connection closed
/// (`isConnected == false`): hiredis cannot reuse a context after them, and
/// the replies still in flight are lost. Call `reconnect()` (or use
/// `ReconnectingRedis`).
///
/// Signals: hiredis 0.14 writes with `write(2)`; to survive a server that went
/// away, the first connection sets SIGPIPE to "ignore" if it still has its
/// default disposition (a handler installed by the application is kept).
package final class RedisConnection {
    package let endpoint: RedisEndpoint
    package let connectTimeoutMs: Int
    package let commandTimeoutMs: Int

    /// The hiredis context; nil when closed. Freed with `redisFree` in `close()` / `deinit`.
    private var context: UnsafeMutablePointer<redisContext>?
    /// Commands appended with `append` whose replies were not read yet.
    package private(set) var pendingReplies = 0
    /// Where a transaction's replies are summarized (`executeTransaction`); freed in `deinit`.
    private let summary: UnsafeMutablePointer<ReplySummary> = {
        let summary = UnsafeMutablePointer<ReplySummary>.allocate(capacity: 1)
        summary.initialize(to: ReplySummary())
        return summary
    }()

    /// Commands per write/read round in `execute`: bounds the client's and the
    /// server's buffers for very large pipelines while staying pipelined.
    package var executeChunkSize = 4096

    /// Connects, authenticates (`AUTH [user] password` when the endpoint has a
    /// password) and selects the database. Blocking (up to `connectTimeoutMs`
    /// for the connect, `commandTimeoutMs` for each handshake command).
    /// A timeout of 0 means "no timeout".
    package init(endpoint: RedisEndpoint, connectTimeoutMs: Int = 2000, commandTimeoutMs: Int = 5000) throws(RedisError) {
        self.endpoint = endpoint
        self.connectTimeoutMs = connectTimeoutMs
        self.commandTimeoutMs = commandTimeoutMs
        try connect()
    }

    /// Convenience: `init(endpoint: RedisEndpoint(url: url), ...)`.
    package convenience init(url: String, connectTimeoutMs: Int = 2000, commandTimeoutMs: Int = 5000) throws(RedisError) {
        try self.init(endpoint: RedisEndpoint(url: url), connectTimeoutMs: connectTimeoutMs, commandTimeoutMs: commandTimeoutMs)
    }

    deinit {
        if let context { redisFree(context) }
        summary.deinitialize(count: 1)
        summary.deallocate()
    }

    /// Whether a context is open and hiredis reports no error on it. A server
    /// that went away is noticed only by the next command.
    package var isConnected: Bool {
        guard let context else { return false }
        return context.pointee.err == 0
    }

    /// Closes the connection (if open) and opens a new one, with AUTH and
    /// SELECT. Replies pending on the old connection are lost. Blocking.
    /// Scripts must be loaded again by the caller (`ReconnectingRedis` does it).
    package func reconnect() throws(RedisError) {
        close()
        try connect()
    }

    /// Frees the hiredis context. Idempotent.
    package func close() {
        if let context {
            redisFree(context)
            self.context = nil
        }
        pendingReplies = 0
    }

    // MARK: - Single commands

    /// Sends one command and waits for its reply. Blocking.
    /// Throws a server error reply as `.server(prefix)` / `.authentication`.
    @discardableResult
    package func command(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        let reply = try roundTrip(command)
        return try reply.checked(context: "\(command.name) on \(endpoint)")
    }

    /// Sends one command given as text arguments (name first). Blocking; see `command(_: RedisCommand)`.
    @discardableResult
    package func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        guard let name = arguments.first else {
            throw RedisError(kind: .invalidArgument, message: "empty command", context: "command on \(endpoint)")
        }
        return try command(RedisCommand(name, Array(arguments.dropFirst())))
    }

    /// Sends one command given as binary-safe arguments (name first). Blocking.
    @discardableResult
    package func command(_ arguments: [[UInt8]]) throws(RedisError) -> RedisReply {
        guard !arguments.isEmpty else {
            throw RedisError(kind: .invalidArgument, message: "empty command", context: "command on \(endpoint)")
        }
        return try command(RedisCommand(arguments: arguments))
    }

    // MARK: - Low-level pipelining

    /// Queues one command in hiredis's output buffer (nothing is sent until a
    /// reply is read). Binary-safe: uses `redisAppendCommandArgv` with explicit
    /// lengths. Read its reply with `readReplies(count:)`.
    package func append(_ arguments: [[UInt8]]) throws(RedisError) {
        let context = try openContext("append")
        guard !arguments.isEmpty else {
            throw RedisError(kind: .invalidArgument, message: "empty command", context: "append on \(endpoint)")
        }
        // One contiguous copy so that all argv pointers stay valid for the call.
        var flat: [UInt8] = []
        flat.reserveCapacity(arguments.reduce(0) { $0 + $1.count } + 1)
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            flat.append(contentsOf: argument)
            lengths.append(argument.count)
        }
        flat.append(0) // so that an all-empty command still has a valid base pointer
        let status: Int32 = flat.withUnsafeBufferPointer { bytes in
            lengths.withUnsafeBufferPointer { lengthBuffer in
                withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: arguments.count) { argv in
                    let base = UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
                    var offset = 0
                    for (index, length) in lengthBuffer.enumerated() {
                        argv[index] = base + offset
                        offset += length
                    }
                    return redisAppendCommandArgv(context, Int32(arguments.count), argv.baseAddress, lengthBuffer.baseAddress)
                }
            }
        }
        if status != REDIS_OK { throw failure(context, during: "append") }
        pendingReplies += 1
    }

    /// Queues one command given as text arguments (name first).
    package func append(_ arguments: [String]) throws(RedisError) {
        try append(arguments.map { Array($0.utf8) })
    }

    /// Queues one command (its RESP encoding is copied into hiredis's buffer).
    package func append(_ command: RedisCommand) throws(RedisError) {
        let context = try openContext("append")
        let encoded = command.encoded
        let status = encoded.withUnsafeBytes { raw in
            redisAppendFormattedCommand(context, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
        if status != REDIS_OK { throw failure(context, during: "append") }
        pendingReplies += 1
    }

    /// Sends everything queued and reads `count` replies, in order. Server
    /// error replies are returned as `.error` values. Blocking.
    package func readReplies(count: Int) throws(RedisError) -> [RedisReply] {
        guard count <= pendingReplies else {
            throw RedisError(kind: .invalidArgument,
                             message: "asked for \(count) replies but only \(pendingReplies) commands are pending",
                             context: "readReplies on \(endpoint)")
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(count)
        for _ in 0..<count {
            replies.append(try readReply(during: "readReplies(count: \(count))"))
        }
        return replies
    }

    // MARK: - Pipelines

    /// Sends all commands of `pipeline` and reads all their replies, in order
    /// (in rounds of `executeChunkSize` commands). A command the server
    /// rejects yields `.error` in its slot and does not disturb the others;
    /// connection, I/O, protocol and timeout failures throw (and close the
    /// connection; some commands may have been applied). Blocking.
    package func execute(_ pipeline: RedisPipeline) throws(RedisError) -> [RedisReply] {
        var replies: [RedisReply] = []
        replies.reserveCapacity(pipeline.count)
        try forEachReply(of: pipeline, during: "execute(pipeline of \(pipeline.count) commands)") { _, reply in
            replies.append(Self.convert(reply))
        }
        return replies
    }

    /// Sends `MULTI`, the commands of `body`, then `EXEC`, and reads the
    /// replies; only errors become Swift values (a flush queues thousands of
    /// commands, each answered `QUEUED` and then by its result, read through
    /// `ReplySummary`'s object functions, which allocate nothing for them).
    /// `body` is written to the socket from its own buffer, with `MULTI`
    /// and `EXEC` around it in the same `writev` (no framed copy, no copy into
    /// hiredis's output buffer), in rounds of `executeChunkSize` commands.
    /// Failures as `execute`. Blocking.
    package func executeTransaction(_ body: RedisPipeline) throws(RedisError) -> TransactionReply {
        let during = "transaction of \(body.count) commands"
        let context = try openIdleContext(during)
        return try withSummarizingReader(context) { summary throws(RedisError) in
            var queueErrors: [String] = []
            var start = 0
            let chunk = max(1, executeChunkSize)
            while true {
                let end = min(body.count, start + chunk)
                let bytes = body.byteRange(of: start..<end)
                let (first, last) = (start == 0, end == body.count)
                let failed = Self.multi.withUnsafeBytes { multi in
                    Self.exec.withUnsafeBytes { exec in
                        body.buffer.withUnsafeBytes { raw in
                            send([first ? multi : UnsafeRawBufferPointer(start: nil, count: 0),
                                  UnsafeRawBufferPointer(rebasing: raw[bytes]),
                                  last ? exec : UnsafeRawBufferPointer(start: nil, count: 0)], context, during: during)
                        }
                    }
                }
                if let failed { throw failed }
                pendingReplies += (first ? 1 : 0) + (end - start) + (last ? 1 : 0)
                // Every reply but EXEC's: MULTI's and the queued commands'.
                while pendingReplies > (last ? 1 : 0) {
                    try readSummarized(summary, context, during: during)
                    if summary.pointee.type == REDIS_REPLY_ERROR { queueErrors.append(summary.pointee.error ?? "") }
                }
                start = end
                if last { break }
            }
            try readSummarized(summary, context, during: during)
            let exec = summary.pointee
            switch exec.type {
            case REDIS_REPLY_ARRAY:
                return .ran(TransactionOutcome(count: exec.count, errors: exec.elementErrors))
            case REDIS_REPLY_NIL:
                return .aborted
            case REDIS_REPLY_ERROR:
                return .discarded(execError: exec.error ?? "", queueErrors: queueErrors)
            default:
                return .discarded(execError: "unexpected reply to EXEC: \(Self.typeName(exec.type))", queueErrors: queueErrors)
            }
        }
    }

    private static let multi: [UInt8] = Array("*1\r\n$5\r\nMULTI\r\n".utf8)
    private static let exec: [UInt8] = Array("*1\r\n$4\r\nEXEC\r\n".utf8)

    /// Runs `body` with `ReplySummary.objectFunctions` installed on the
    /// context's reader (so replies read meanwhile are summaries, see
    /// `readSummarized`), then puts the reader's own functions back. When
    /// `body` fails, the context was closed (freed with the summarizing
    /// functions still installed, which is what a half-read reply needs).
    private func withSummarizingReader<T>(_ context: UnsafeMutablePointer<redisContext>,
                                          _ body: (UnsafeMutablePointer<ReplySummary>) throws(RedisError) -> T) throws(RedisError) -> T {
        guard let reader = context.pointee.reader else {
            throw RedisError(kind: .connection, message: "hiredis context without a reader", context: "transaction on \(endpoint)")
        }
        let previous = (functions: reader.pointee.fn, privdata: reader.pointee.privdata)
        summary.pointee.reset()
        reader.pointee.fn = ReplySummary.objectFunctions
        reader.pointee.privdata = UnsafeMutableRawPointer(summary)
        defer {
            // Only if the context is still open: a failure freed it (and its reader).
            if self.context == context {
                reader.pointee.fn = previous.functions
                reader.pointee.privdata = previous.privdata
            }
        }
        return try body(summary)
    }

    /// Reads one reply into `summary` (cleared first); the reader must have
    /// the summarizing functions installed (`withSummarizingReader`).
    private func readSummarized(_ summary: UnsafeMutablePointer<ReplySummary>, _ context: UnsafeMutablePointer<redisContext>,
                                during: String) throws(RedisError) {
        summary.pointee.reset()
        var object: UnsafeMutableRawPointer?
        guard redisGetReply(context, &object) == REDIS_OK, object != nil else {
            throw failure(context, during: during)
        }
        pendingReplies -= 1
    }

    /// Writes `parts`, in order, straight to the socket with `writev`;
    /// nil once all is written. hiredis's output buffer must be empty (it
    /// is whenever no reply is pending: reading one flushes it), so the
    /// bytes keep their place in the stream. On failure the context is
    /// closed and the error returned: `.timeout` when the send timeout
    /// expired, `.io` otherwise (as hiredis reports its own writes).
    private func send(_ parts: [UnsafeRawBufferPointer], _ context: UnsafeMutablePointer<redisContext>, during: String) -> RedisError? {
        guard freshet_redis_output_pending(context) == 0 else {
            return RedisError(kind: .invalidArgument, message: "hiredis's output buffer is not empty",
                              context: "\(during) on \(endpoint)")
        }
        var vectors = parts.compactMap { part -> iovec? in
            guard let base = part.baseAddress, !part.isEmpty else { return nil }
            return iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: part.count)
        }
        var next = 0
        while next < vectors.count {
            let written = vectors.withUnsafeBufferPointer { all in
                all.baseAddress.map { writev(context.pointee.fd, $0 + next, Int32(all.count - next)) } ?? -1
            }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                let code = written < 0 ? errno : EIO
                let message = String(cString: strerror(code))
                close()
                return RedisError(kind: code == EAGAIN || code == EWOULDBLOCK ? .timeout : .io, message: message,
                                  context: "\(during) on \(endpoint)", libraryCode: REDIS_ERR_IO)
            }
            var rest = written
            while rest > 0 {
                if rest >= vectors[next].iov_len {
                    rest -= vectors[next].iov_len
                    next += 1
                } else {
                    vectors[next].iov_base = vectors[next].iov_base.map { $0 + rest }
                    vectors[next].iov_len -= rest
                    rest = 0
                }
            }
        }
        return nil
    }

    private static func typeName(_ type: Int32) -> String {
        switch type {
        case REDIS_REPLY_STRING: "a bulk string"
        case REDIS_REPLY_STATUS: "a status"
        case REDIS_REPLY_INTEGER: "an integer"
        default: "type \(type)"
        }
    }

    /// Sends the pipeline in rounds of `executeChunkSize` commands and hands
    /// each reply, in order, to `handle` (valid only during the call).
    private func forEachReply(of pipeline: RedisPipeline, during: String,
                              _ handle: (Int, UnsafeMutablePointer<redisReply>) -> Void) throws(RedisError) {
        let context = try openIdleContext(during)
        var start = 0
        let chunk = max(1, executeChunkSize)
        while start < pipeline.count {
            let end = min(pipeline.count, start + chunk)
            let bytes = pipeline.byteRange(of: start..<end)
            let status = pipeline.buffer.withUnsafeBytes { raw in
                let slice = UnsafeRawBufferPointer(rebasing: raw[bytes])
                return redisAppendFormattedCommand(context, slice.baseAddress?.assumingMemoryBound(to: CChar.self), slice.count)
            }
            if status != REDIS_OK { throw failure(context, during: during) }
            pendingReplies += end - start
            for index in start..<end {
                try withNextReply(during: during) { handle(index, $0) }
            }
            start = end
        }
    }

    // MARK: - Scripts

    /// `SCRIPT LOAD`s the script so that `EVALSHA` finds it (e.g. in a pipeline).
    /// Call after every (re)connect. Blocking.
    package func loadScript(_ script: RedisScript) throws(RedisError) {
        let reply = try command(.scriptLoad(script))
        guard reply.string == script.sha1 else {
            throw RedisError(kind: .protocol, message: "SCRIPT LOAD returned \(reply), expected \(script.sha1)",
                             context: "loadScript on \(endpoint)")
        }
    }

    /// Runs the script with `EVALSHA`; on `NOSCRIPT`, loads it and retries once.
    /// Script errors throw `.server(prefix)`. Blocking.
    @discardableResult
    package func evalScript(_ script: RedisScript, keys: [String] = [], args: [String] = []) throws(RedisError) -> RedisReply {
        try evalScript(script, command: .evalsha(script, keys: keys, args: args))
    }

    /// `evalScript` with binary arguments.
    @discardableResult
    package func evalScript(_ script: RedisScript, keys: [String], binaryArgs: [[UInt8]]) throws(RedisError) -> RedisReply {
        try evalScript(script, command: .evalsha(script, keys: keys, binaryArgs: binaryArgs))
    }

    private func evalScript(_ script: RedisScript, command evalsha: RedisCommand) throws(RedisError) -> RedisReply {
        let context = "evalScript(\(script.sha1)) on \(endpoint)"
        var reply = try roundTrip(evalsha)
        if let message = reply.errorMessage, RedisError.serverErrorPrefix(message) == "NOSCRIPT" {
            try loadScript(script)
            reply = try roundTrip(evalsha)
        }
        return try reply.checked(context: context)
    }

    // MARK: - Reads

    /// `HGETALL key` as field/value pairs in server order (empty when the key does not exist). Blocking.
    package func hgetall(_ key: String) throws(RedisError) -> [(field: String, value: [UInt8])] {
        let reply = try command(.hgetall(key))
        guard let pairs = reply.fieldValuePairs else {
            throw RedisError(kind: .protocol, message: "unexpected HGETALL reply \(reply)", context: "hgetall(\(key)) on \(endpoint)")
        }
        return pairs
    }

    /// One `HSCAN key cursor [MATCH pattern] COUNT count` step. Start with
    /// cursor 0; the scan is complete when the returned cursor is 0. Fields
    /// may be returned more than once across steps (Redis's SCAN guarantees). Blocking.
    package func hscan(key: String, cursor: UInt64 = 0, count: Int = 100, match: String? = nil)
        throws(RedisError) -> (cursor: UInt64, fields: [(field: String, value: [UInt8])]) {
        var scan = RedisCommand("HSCAN")
        scan.append(key)
        scan.append(String(cursor))
        if let match {
            scan.append("MATCH")
            scan.append(match)
        }
        scan.append("COUNT")
        scan.append(count)
        let reply = try command(scan)
        guard let parts = reply.array, parts.count == 2,
              let next = parts[0].string.flatMap({ UInt64($0) }),
              let fields = parts[1].fieldValuePairs else {
            throw RedisError(kind: .protocol, message: "unexpected HSCAN reply \(reply)", context: "hscan(\(key)) on \(endpoint)")
        }
        return (next, fields)
    }

    /// `PING`. Blocking.
    package func ping() throws(RedisError) {
        try command(.ping)
    }

    // MARK: - Internals

    private static let sigpipeIgnored: Bool = freshet_ignore_sigpipe_if_default() == 0

    private func connect() throws(RedisError) {
        let during = "connect to \(endpoint)"
        if endpoint.tls {
            throw RedisError(kind: .unsupported,
                             message: "TLS (rediss://) is not supported: Debian bookworm's hiredis 0.14.1 is built without SSL; use redis:// through a TLS tunnel (stunnel, a sidecar) or a hiredis >= 1.0 build",
                             context: during)
        }
        _ = Self.sigpipeIgnored
        let connectTimeout = Self.timeval(milliseconds: connectTimeoutMs)
        let created: UnsafeMutablePointer<redisContext>?
        if let path = endpoint.unixSocketPath {
            created = connectTimeoutMs > 0 ? redisConnectUnixWithTimeout(path, connectTimeout) : redisConnectUnix(path)
        } else {
            created = connectTimeoutMs > 0
                ? redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), connectTimeout)
                : redisConnect(endpoint.host, Int32(endpoint.port))
        }
        guard let created else {
            throw RedisError(kind: .connection, message: "hiredis could not allocate a context", context: during)
        }
        if created.pointee.err != 0 {
            let error = Self.contextError(created, during: during, connecting: true)
            redisFree(created)
            throw error
        }
        // Command timeout (SO_RCVTIMEO/SO_SNDTIMEO); 0 turns timeouts off.
        if redisSetTimeout(created, Self.timeval(milliseconds: max(0, commandTimeoutMs))) != REDIS_OK {
            let error = Self.contextError(created, during: "\(during): setting the command timeout", connecting: true)
            redisFree(created)
            throw error
        }
        if endpoint.unixSocketPath == nil {
            _ = redisEnableKeepAlive(created) // best effort: detects dead peers on idle connections
        }
        context = created
        pendingReplies = 0

        do throws(RedisError) {
            if let password = endpoint.password {
                var auth = RedisCommand("AUTH")
                if let username = endpoint.username { auth.append(username) }
                auth.append(password)
                let reply = try roundTrip(auth)
                if let message = reply.errorMessage {
                    throw RedisError(kind: .authentication, message: message,
                                     context: "AUTH as \(endpoint.username ?? "default") on \(endpoint)")
                }
            }
            if endpoint.database != 0 {
                var select = RedisCommand("SELECT")
                select.append(endpoint.database)
                try command(select)
            }
        } catch {
            close()
            throw error
        }
    }

    /// The open context, or `.connection` when closed.
    private func openContext(_ during: String) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        guard let context, context.pointee.err == 0 else {
            throw RedisError(kind: .connection, message: "not connected (call reconnect())", context: "\(during) on \(endpoint)")
        }
        return context
    }

    /// The open context, when no reply of an appended command is still
    /// unread (a pipeline's replies would otherwise be read out of turn).
    private func openIdleContext(_ during: String) throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        let context = try openContext(during)
        guard pendingReplies == 0 else {
            throw RedisError(kind: .invalidArgument,
                             message: "\(pendingReplies) replies of appended commands are still unread",
                             context: "\(during) on \(endpoint)")
        }
        return context
    }

    /// Sends one command and returns its reply, error replies included.
    private func roundTrip(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        let during = command.name
        let context = try openIdleContext(during)
        let encoded = command.encoded
        let status = encoded.withUnsafeBytes { raw in
            redisAppendFormattedCommand(context, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
        if status != REDIS_OK { throw failure(context, during: during) }
        pendingReplies += 1
        return try readReply(during: during)
    }

    /// Reads one reply (flushing the output buffer first, as hiredis does).
    private func readReply(during: String) throws(RedisError) -> RedisReply {
        try withNextReply(during: during) { Self.convert($0) }
    }

    /// Reads one reply and hands hiredis's object to `body`, which must not
    /// keep it: it is freed when `body` returns.
    private func withNextReply<T>(during: String, _ body: (UnsafeMutablePointer<redisReply>) -> T) throws(RedisError) -> T {
        let context = try openContext(during)
        var raw: UnsafeMutableRawPointer?
        let status = redisGetReply(context, &raw)
        guard status == REDIS_OK, let raw else {
            throw failure(context, during: during)
        }
        defer { freeReplyObject(raw) }
        pendingReplies -= 1
        return body(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Builds the error for a failed hiredis call and closes the (now unusable) context.
    private func failure(_ context: UnsafeMutablePointer<redisContext>, during: String) -> RedisError {
        let error = Self.contextError(context, during: "\(during) on \(endpoint)", connecting: false)
        close()
        return error
    }

    private static func contextError(_ context: UnsafeMutablePointer<redisContext>, during: String, connecting: Bool) -> RedisError {
        let savedErrno = errno
        let code = context.pointee.err
        let message = String(cString: freshet_redis_errstr(context))
        let kind: RedisError.Kind
        switch code {
        case REDIS_ERR_IO:
            if savedErrno == EAGAIN || savedErrno == EWOULDBLOCK || savedErrno == ETIMEDOUT
                || message.contains("timed out") || message.contains("temporarily unavailable") {
                kind = .timeout
            } else {
                kind = connecting ? .connection : .io
            }
        case REDIS_ERR_EOF: kind = .connection
        case REDIS_ERR_PROTOCOL: kind = .protocol
        case REDIS_ERR_OOM: kind = .io
        default: kind = .connection
        }
        return RedisError(kind: kind, message: message.isEmpty ? "hiredis error \(code)" : message,
                          context: during, libraryCode: code)
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STATUS:
            return .status(text(r))
        case REDIS_REPLY_ERROR:
            return .error(text(r))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_STRING:
            guard let str = r.str, r.len > 0 else { return .bulk([]) }
            return .bulk(Array(UnsafeRawBufferPointer(start: str, count: r.len)))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(r.elements)
            if let element = r.element {
                for index in 0..<r.elements {
                    if let child = element[index] { elements.append(convert(child)) } else { elements.append(.null) }
                }
            }
            return .array(elements)
        default:
            return .error("FRESHET unknown hiredis reply type \(r.type)")
        }
    }

    private static func text(_ r: redisReply) -> String {
        guard let str = r.str, r.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: r.len), as: UTF8.self)
    }

    private static func timeval(milliseconds: Int) -> timeval {
        Glibc.timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
    }
}

/// Not `Sendable`: a hiredis context must not be used from two threads.
@available(*, unavailable)
extension RedisConnection: Sendable {}
