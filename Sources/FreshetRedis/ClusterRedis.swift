#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `RedisStore` over a Redis Cluster: each command of a pipeline goes to the
/// master of its key's slot (`RedisClusterClient`), and, like
/// `ReconnectingRedis`, the pipeline is retried until it succeeds or
/// `shouldStop()` says so: an unreachable cluster or a failover pauses the
/// caller, it never drops a write.
///
/// Writes wait for one replica (`WAIT 1`, when the master has one) so that a
/// write acknowledged here survives its master's death; see
/// `RedisClusterClient.replicaAcks`.
///
/// Threading: owned by one thread.
package final class ClusterRedis: RedisStore {
    package let endpoints: ClusterEndpoints
    package var shouldStop: () -> Bool
    package var backoff = ReconnectingRedis.Backoff()
    /// Replicas that must acknowledge each node's writes (capped by the replicas it has).
    package var replicaAcks = 1
    private let connectTimeoutMs: Int
    private let commandTimeoutMs: Int
    private var client: RedisClusterClient?
    private var scripts: [RedisScript] = []
    /// True during `executeOnce`: every wait for a retry ends at once (the client asks through `stopRetrying`).
    private var singleAttempt = false
    /// Whether retrying must end now: `shouldStop()`, or a single attempt in progress.
    private var stopRetrying: Bool { singleAttempt || shouldStop() }

    /// Does not connect: the first operation does.
    package init(endpoints: ClusterEndpoints, connectTimeoutMs: Int = 2000, commandTimeoutMs: Int = 5000,
                shouldStop: @escaping () -> Bool = { false }) {
        self.endpoints = endpoints
        self.connectTimeoutMs = connectTimeoutMs
        self.commandTimeoutMs = commandTimeoutMs
        self.shouldStop = shouldStop
    }

    package func registerScript(_ script: RedisScript) {
        guard !scripts.contains(script) else { return }
        scripts.append(script)
        client?.registerScript(script)
    }

    /// Every command must have a key (`RedisCommand.routingKey`); a key-less
    /// one is refused with `.invalidArgument` (use `serverRunId` for `INFO`).
    /// Not on a cluster: a transaction's keys would span slots and nodes;
    /// cluster writes are fenced per slot instead (`ClusterFencing`).
    package func executeWatched(check: RedisPipeline, transaction: ([RedisReply]) -> RedisPipeline,
                                onRetry: (RedisError, Int) -> Void) throws(RedisError) -> (check: [RedisReply], outcome: TransactionOutcome) {
        throw RedisError(kind: .unsupported, message: "WATCH/MULTI/EXEC across a cluster's slots", context: "ClusterRedis.executeWatched")
    }

    package func execute(_ pipeline: RedisPipeline, onRetry: (RedisError, Int) -> Void) throws(RedisError) -> [RedisReply] {
        var commands: [ClusterCommand] = []
        for command in pipeline.commands {
            guard let key = command.routingKey else {
                throw RedisError(kind: .invalidArgument, message: "\(command.name) has no key to route by",
                                 context: "ClusterRedis.execute on \(endpoints)")
            }
            commands.append(ClusterCommand(key: key, command: command))
        }
        return try execute(commands, onRetry: onRetry)
    }

    /// Commands with their routing keys (the Redis writer builds these directly).
    package func execute(_ commands: [ClusterCommand], onRetry: (RedisError, Int) -> Void) throws(RedisError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try retrying(onRetry) { client throws(RedisError) in try client.execute(commands, onRetry: onRetry) }
    }

    /// One attempt (see `RedisStore.executeOnce`): a node that cannot be
    /// reached or refuses transiently fails the call at once instead of being
    /// waited for; redirections are still followed.
    package func executeOnce(_ pipeline: RedisPipeline) throws(RedisError) -> [RedisReply] {
        singleAttempt = true
        defer { singleAttempt = false }
        return try execute(pipeline, onRetry: { _, _ in })
    }

    /// The masters' `run_id`s, in slot order: a restarted master or a failover changes it.
    package func serverRunId(onRetry: (RedisError, Int) -> Void) throws(RedisError) -> String {
        try retrying(onRetry) { client throws(RedisError) in
            try client.onEveryMaster(RedisCommand("INFO", "server")).map { node, reply throws(RedisError) in
                "\(node)=\(try RedisStoreInfo.runId(reply, context: "INFO server on \(node)"))"
            }.joined(separator: ",")
        }
    }

    package func evictionSettings(onRetry: (RedisError, Int) -> Void) throws(RedisError) -> [String: RedisEvictionSetting] {
        try retrying(onRetry) { client throws(RedisError) in
            var settings: [String: RedisEvictionSetting] = [:]
            for (node, reply) in try client.onEveryMaster(RedisCommand("INFO", "memory")) {
                settings["\(node)"] = try RedisEvictionSetting(info: reply, context: "INFO memory on \(node)")
            }
            return settings
        }
    }

    package func close() {
        client?.close()
        client = nil
    }

    /// The client's current topology (diagnostics, tests).
    package var topology: ClusterTopology? { client?.topology }

    private func retrying<T>(_ onRetry: (RedisError, Int) -> Void,
                             _ body: (RedisClusterClient) throws(RedisError) -> T) throws(RedisError) -> T {
        var attempt = 0
        while true {
            do {
                return try body(try connectedClient())
            } catch {
                guard error.isRetriable, !stopRetrying else { throw error }
                attempt += 1
                onRetry(error, attempt)
                var remaining = backoff.delayMs(attempt: attempt)
                while remaining > 0 && !stopRetrying {
                    let step = min(remaining, 50)
                    usleep(UInt32(step) * 1000)
                    remaining -= step
                }
                if stopRetrying { throw error }
                do { try client?.refreshTopology() } catch {}
            }
        }
    }

    private func connectedClient() throws(RedisError) -> RedisClusterClient {
        if let client { return client }
        let client = try RedisClusterClient(endpoints: endpoints, connectTimeoutMs: connectTimeoutMs,
                                            commandTimeoutMs: commandTimeoutMs, backoff: backoff,
                                            failoverTimeoutMs: Int(Int32.max), shouldStop: { [weak self] in self?.stopRetrying ?? true })
        client.replicaAcks = replicaAcks
        for script in scripts { client.registerScript(script) }
        self.client = client
        return client
    }
}
