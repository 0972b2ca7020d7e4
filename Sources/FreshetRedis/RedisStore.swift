/// What the processor needs from its online store, whether one Redis
/// (`ReconnectingRedis`) or a Redis Cluster (`ClusterRedis`): pipelines that
/// are retried until they succeed or `shouldStop()` says so, registered
/// scripts, and an identity of the running server(s) to notice restarts.
///
/// Contract: every command carries its key (a cluster routes by it; `EVAL`/
/// `EVALSHA` by their first key); commands of one pipeline may run on
/// different nodes of a cluster, so a multi-key command must keep its keys in
/// one slot (hash tags). Commands must be idempotent (see `ReconnectingRedis`).
///
/// Threading: owned by one thread, like `RedisConnection`.
package protocol RedisStore: AnyObject {
    /// Replies in the pipeline's order. `onRetry(error, attempt)` before each back-off sleep.
    func execute(_ pipeline: RedisPipeline, onRetry: (RedisError, Int) -> Void) throws(RedisError) -> [RedisReply]
    /// A check, then a transaction decided from its replies, both on one
    /// connection (optimistic locking, `WATCH`/`MULTI`/`EXEC`).
    ///
    /// `check` must begin with `WATCH` of every key the decision reads; then
    /// `transaction(checkReplies)` returns the commands to run between
    /// `MULTI` and `EXEC` (empty: nothing to write; the keys are unwatched).
    /// When a watched key changed before `EXEC` (its reply is nil), nothing
    /// was applied and both run again, so the decision always rests on what
    /// Redis held when the transaction ran. Retried like `execute` on
    /// connection failures and transient refusals (`OOM`, `READONLY`, ...,
    /// whether answered when a command is queued or at `EXEC`); `onRetry`
    /// before each back-off sleep.
    ///
    /// - Returns: the check's replies, and what the transaction's commands
    ///   answered: how many ran, and the errors among them (e.g. `WRONGTYPE`)
    ///   by position (none ran when the transaction was empty).
    /// - Throws: `RedisError`: non-retriable failures, a transaction Redis
    ///   discarded for a non-transient reason (`EXECABORT`: a malformed
    ///   command), or the last error once `shouldStop()` ends retrying.
    ///   `.unsupported` on a Redis Cluster (its writes are split by slot).
    func executeWatched(check: RedisPipeline, transaction: ([RedisReply]) -> RedisPipeline,
                        onRetry: (RedisError, Int) -> Void) throws(RedisError) -> (check: [RedisReply], outcome: TransactionOutcome)
    /// One attempt of `execute`, for best-effort writes that must never hold
    /// the caller in a back-off: connects if needed, sends the pipeline once
    /// and returns its replies; a connection failure or a transient refusal
    /// among the replies (`RedisError.transientServerPrefixes`) throws at once,
    /// without sleeping and whatever `shouldStop` says (the next operation
    /// reconnects). Other error replies come back as values, as in `execute`.
    /// A cluster still follows `MOVED`/`ASK` redirections (they do not wait).
    func executeOnce(_ pipeline: RedisPipeline) throws(RedisError) -> [RedisReply]
    /// A script to (re)load wherever `NOSCRIPT` is answered.
    func registerScript(_ script: RedisScript)
    /// Asked between retries; true ends retrying (the last error is thrown).
    var shouldStop: () -> Bool { get set }
    /// Changes whenever a server holding the data restarted or was replaced
    /// (one Redis: its `run_id`; a cluster: every master's `run_id`, so a failover changes it too).
    /// Retried like `execute`; `onRetry(error, attempt)` before each back-off sleep.
    func serverRunId(onRetry: (RedisError, Int) -> Void) throws(RedisError) -> String
    /// Each server's eviction setting (`INFO memory`), keyed by the server
    /// (one entry on one Redis, one per master on a cluster). Retried like `execute`.
    func evictionSettings(onRetry: (RedisError, Int) -> Void) throws(RedisError) -> [String: RedisEvictionSetting]
    func close()
}

extension RedisStore {
    /// One command (retried like a pipeline).
    package func run(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        try execute(RedisPipeline([command]), onRetry: { _, _ in }).first ?? .null
    }

    /// Calls `apply` with every (field, value) of the hash at `key`, read in
    /// pages (`HSCAN ... COUNT 5000`) so a large hash (a task's checkpoint) is
    /// never held whole. Each page is retried like a pipeline (`onRetry`
    /// before each back-off sleep). A field may be seen twice if the hash
    /// changes meanwhile (HSCAN's guarantee); nothing here writes it.
    ///
    /// - Throws: `RedisError` (`.protocol` for a malformed reply), or what `apply` throws.
    package func scanHash(_ key: String, onRetry: (RedisError, Int) -> Void = { _, _ in },
                         _ apply: ([UInt8], [UInt8]) throws -> Void) throws {
        var cursor: [UInt8] = Array("0".utf8)
        repeat {
            let command = RedisCommand(arguments: [Array("HSCAN".utf8), Array(key.utf8), cursor,
                                                   Array("COUNT".utf8), Array("5000".utf8)])
            let replies = try execute(RedisPipeline([command]), onRetry: onRetry)
            guard let reply = replies.first, case .array(let parts) = reply, parts.count == 2,
                  case .bulk(let next) = parts[0], case .array(let items) = parts[1] else {
                throw RedisError(kind: .protocol, message: "unexpected HSCAN reply: \(String(describing: replies.first))",
                                 context: "scan \(key)")
            }
            var index = 0
            while index + 1 < items.count {
                if case .bulk(let field) = items[index], case .bulk(let value) = items[index + 1] {
                    try apply(field, value)
                }
                index += 2
            }
            cursor = next
        } while cursor != Array("0".utf8)
    }

    /// HGETALL as (field, value) pairs; empty when the key is missing.
    package func hgetall(_ key: String) throws(RedisError) -> [(field: String, value: [UInt8])] {
        try run(RedisCommand("HGETALL", key)).fieldValuePairs ?? []
    }
}

extension ReconnectingRedis: RedisStore {
    package func executeWatched(check: RedisPipeline, transaction: ([RedisReply]) -> RedisPipeline,
                                onRetry: (RedisError, Int) -> Void) throws(RedisError) -> (check: [RedisReply], outcome: TransactionOutcome) {
        try withConnection(onRetry: onRetry) { connection throws(RedisError) in
            while true {
                let checked = try attempt(check, on: connection)
                let body = transaction(checked)
                if body.isEmpty {
                    _ = try connection.execute(RedisPipeline([RedisCommand("UNWATCH")]))
                    return (checked, TransactionOutcome(count: 0, errors: []))
                }
                let context = "transaction of \(body.count) commands on \(endpoint)"
                switch try connection.executeTransaction(body) {
                case .ran(let outcome):
                    return (checked, outcome)
                case .aborted:
                    continue  // A watched key changed between the check and EXEC: nothing was applied; decide again.
                case .discarded(let execError, let queueErrors):
                    throw WatchedTransaction.discarded(execError: execError, queueErrors: queueErrors, context: context)
                }
            }
        }
    }

    package func serverRunId(onRetry: (RedisError, Int) -> Void) throws(RedisError) -> String {
        let reply = try execute(RedisPipeline([RedisCommand("INFO", "server")]), onRetry: onRetry).first
        return try RedisStoreInfo.runId(reply, context: "INFO server on \(endpoint)")
    }

    package func evictionSettings(onRetry: (RedisError, Int) -> Void) throws(RedisError) -> [String: RedisEvictionSetting] {
        let reply = try execute(RedisPipeline([RedisCommand("INFO", "memory")]), onRetry: onRetry).first
        return ["\(endpoint)": try RedisEvictionSetting(info: reply, context: "INFO memory on \(endpoint)")]
    }
}

enum RedisStoreInfo {
    /// `run_id` from an `INFO server` reply.
    static func runId(_ reply: RedisReply?, context: String) throws(RedisError) -> String {
        try field("run_id", of: reply, context: context)
    }

    /// The value of `name` in an `INFO` reply (`name:value` lines).
    static func field(_ name: String, of reply: RedisReply?, context: String) throws(RedisError) -> String {
        let prefix = name + ":"
        guard let text = reply?.string,
              let line = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix(prefix) }) else {
            throw RedisError(kind: .protocol, message: "INFO has no \(name)", context: context)
        }
        return String(line.dropFirst(prefix.count))
    }
}

/// What a Redis server does when it reaches `maxmemory`.
package struct RedisEvictionSetting: Sendable, Equatable {
    /// `maxmemory_policy`: `noeviction`, `allkeys-lru`, `volatile-ttl`, ...
    package var policy: String
    /// `maxmemory` in bytes; 0 = no limit (nothing is ever evicted).
    package var maxmemoryBytes: Int64

    package init(policy: String, maxmemoryBytes: Int64) {
        self.policy = policy
        self.maxmemoryBytes = maxmemoryBytes
    }

    /// Reads an `INFO memory` reply. Throws `.protocol` when a field is missing.
    package init(info reply: RedisReply?, context: String) throws(RedisError) {
        policy = try RedisStoreInfo.field("maxmemory_policy", of: reply, context: context)
        guard let bytes = Int64(try RedisStoreInfo.field("maxmemory", of: reply, context: context)) else {
            throw RedisError(kind: .protocol, message: "INFO memory has a maxmemory that is not an integer", context: context)
        }
        maxmemoryBytes = bytes
    }

    /// Whether the server may evict any key, not only keys with a TTL (an
    /// `allkeys-*` policy; Freshet's keys carry no TTL, so `volatile-*`
    /// policies never evict them).
    package var evictsKeysWithoutTTL: Bool { policy.hasPrefix("allkeys-") }
}

/// Where the online store is: one Redis (`redis://`, `unix://`) or a Redis
/// Cluster (`redis+cluster://host:port[,host:port...]`).
package enum RedisTarget: Sendable, Equatable, CustomStringConvertible {
    case single(RedisEndpoint)
    case cluster(ClusterEndpoints)

    /// Parses either URL form. Throws `.invalidArgument` naming the URL (password redacted).
    package init(url: String) throws(RedisError) {
        if ClusterEndpoints.isClusterURL(url) {
            self = .cluster(try ClusterEndpoints(url: url))
        } else {
            self = .single(try RedisEndpoint(url: url, expecting: "redis://, rediss://, unix:// or \(ClusterEndpoints.scheme)://"))
        }
    }

    package var isCluster: Bool {
        if case .cluster = self { return true }
        return false
    }

    package var description: String {
        switch self {
        case .single(let endpoint): return endpoint.description
        case .cluster(let endpoints): return endpoints.description
        }
    }

    /// A store that connects on first use (so the process can start while Redis is down).
    package func makeStore(connectTimeoutMs: Int = 2000, commandTimeoutMs: Int = 5000,
                          shouldStop: @escaping () -> Bool = { false }) throws(RedisError) -> any RedisStore {
        switch self {
        case .single(let endpoint):
            return try ReconnectingRedis(endpoint: endpoint, connectTimeoutMs: connectTimeoutMs,
                                         commandTimeoutMs: commandTimeoutMs, shouldStop: shouldStop)
        case .cluster(let endpoints):
            return ClusterRedis(endpoints: endpoints, connectTimeoutMs: connectTimeoutMs,
                                commandTimeoutMs: commandTimeoutMs, shouldStop: shouldStop)
        }
    }
}

/// Reading the replies of a `WATCH` ... `MULTI` ... `EXEC` round (`RedisStore.executeWatched`).
package enum WatchedTransaction {
    /// The error for a transaction Redis discarded: a transient refusal of a
    /// queued command (`OOM`, `READONLY`, ...: Redis answers `EXECABORT`) or
    /// of `EXEC` itself is retriable `.server(prefix)`; anything else (a
    /// malformed command) is `.server` with its prefix and not retriable.
    package static func discarded(execError: String, queueErrors: [String], context: String) -> RedisError {
        for message in queueErrors + [execError] {
            let prefix = RedisError.serverErrorPrefix(message)
            if RedisError.transientServerPrefixes.contains(prefix) {
                return RedisError(kind: .server(prefix), message: message, context: context)
            }
        }
        let cause = queueErrors.first.map { " (first refusal: \($0))" } ?? ""
        return RedisError(kind: .server(RedisError.serverErrorPrefix(execError)), message: execError + cause, context: context)
    }
}

/// What `EXEC` answered for a transaction's commands, without the replies of
/// those that succeeded.
package struct TransactionOutcome: Sendable, Equatable {
    /// A command Redis refused while running the transaction (e.g. `WRONGTYPE`).
    package struct Failure: Sendable, Equatable {
        /// Its position among the transaction's commands, from 0.
        package var index: Int
        package var message: String
        package init(index: Int, message: String) {
            self.index = index
            self.message = message
        }
    }

    /// How many commands ran.
    package var count: Int
    package var errors: [Failure]

    package init(count: Int, errors: [Failure]) {
        self.count = count
        self.errors = errors
    }
}

/// How a `MULTI` ... `EXEC` round ended (`RedisConnection.executeTransaction`).
package enum TransactionReply: Sendable, Equatable {
    case ran(TransactionOutcome)
    /// A watched key changed: nothing was applied.
    case aborted
    /// Redis discarded the transaction (`EXECABORT` after a refused queued
    /// command, or `EXEC` itself refused); nothing was applied.
    case discarded(execError: String, queueErrors: [String])
}
