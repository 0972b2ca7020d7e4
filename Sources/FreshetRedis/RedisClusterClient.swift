import Foundation

/// One command for a cluster, with the key that routes it (for `EVALSHA`,
/// the script's first key; every key of one command must share its slot).
package struct ClusterCommand: Sendable {
    package var key: [UInt8]
    package var command: RedisCommand
    package init(key: [UInt8], command: RedisCommand) { self.key = key; self.command = command }
    package init(key: String, command: RedisCommand) { self.init(key: Array(key.utf8), command: command) }
    package var slot: Int { ClusterSlot.of(key) }
}

/// A Redis Cluster client over hiredis 0.14 (which has no cluster support):
/// slot routing, one pipelined round per node, `MOVED`/`ASK` redirections,
/// topology refresh, reconnects and waiting out a failover.
///
/// `execute` sends each command to the master of its key's slot, all commands
/// for one node in one pipeline (in their original order), and returns the
/// replies in the caller's order. Then, for each reply:
/// - `MOVED slot node`: the slot map entry is updated, the topology is
///   refreshed (`CLUSTER SLOTS`) before the next round, and the command is resent;
/// - `ASK slot node`: the command is resent to that node once, after `ASKING`
///   (a slot being migrated; the map is not changed);
/// - `NOSCRIPT`: the registered scripts are loaded on that node and the command resent;
/// - `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`, `READONLY`: resent after a back-off;
/// - any other reply (errors included) is final.
/// A node that cannot be reached (or whose connection fails) has its commands
/// resent after a back-off and a topology refresh, until `failoverTimeoutMs`
/// has passed without progress or `shouldStop()` says so: that is how a
/// master's failover (its replica promoted after `cluster-node-timeout`) is
/// waited out. Commands must therefore be idempotent (Freshet's are absolute writes).
///
/// Thread-safety: not thread-safe; use it from one thread (the Redis writer's).
package final class RedisClusterClient {
    package let endpoints: ClusterEndpoints
    package private(set) var topology = ClusterTopology()
    package var connectTimeoutMs: Int
    package var commandTimeoutMs: Int
    package var backoff: ReconnectingRedis.Backoff
    /// How long commands are retried while a node is unreachable or the cluster is down.
    package var failoverTimeoutMs: Int
    package var shouldStop: () -> Bool
    /// Replicas that must acknowledge a node's writes before its replies
    /// count (`WAIT`), capped by the replicas the master has (0: do not wait).
    /// Redis replicates asynchronously: without it a write acknowledged by a
    /// master that dies before replicating it is lost when its replica takes
    /// over. A `WAIT` that falls short resends the node's commands (idempotent).
    package var replicaAcks = 0
    /// How long one `WAIT` blocks, in milliseconds.
    package var replicaAckTimeoutMs = 1000
    /// Counters for tests and metrics.
    package private(set) var redirects = (moved: 0, ask: 0)
    package private(set) var topologyRefreshes = 0
    package private(set) var reconnects = 0

    private var connections: [ClusterTopology.Node: RedisConnection] = [:]
    private var scripts: [RedisScript] = []

    /// Connects to a seed and learns the topology. Throws when no seed answers `CLUSTER SLOTS`.
    package init(endpoints: ClusterEndpoints, connectTimeoutMs: Int = 2000, commandTimeoutMs: Int = 5000,
                backoff: ReconnectingRedis.Backoff = .init(), failoverTimeoutMs: Int = 30_000,
                shouldStop: @escaping () -> Bool = { false }) throws(RedisError) {
        guard !endpoints.seeds.isEmpty else {
            throw RedisError(kind: .invalidArgument, message: "no seed nodes", context: "RedisClusterClient")
        }
        self.endpoints = endpoints
        self.connectTimeoutMs = connectTimeoutMs
        self.commandTimeoutMs = commandTimeoutMs
        self.backoff = backoff
        self.failoverTimeoutMs = failoverTimeoutMs
        self.shouldStop = shouldStop
        try refreshTopology()
    }

    /// Scripts loaded on a node when it answers `NOSCRIPT`.
    package func registerScript(_ script: RedisScript) {
        if !scripts.contains(script) { scripts.append(script) }
    }

    /// Asks the known masters, then the seeds, for `CLUSTER SLOTS`; the first answer wins.
    package func refreshTopology() throws(RedisError) {
        topologyRefreshes += 1
        var candidates = topology.masters
        for seed in endpoints.seeds {
            let node = ClusterTopology.Node(host: seed.host, port: seed.port)
            if !candidates.contains(node) { candidates.append(node) }
        }
        var lastError = RedisError(kind: .connection, message: "no node answered", context: "CLUSTER SLOTS")
        for node in candidates {
            do {
                let reply = try connection(to: node).command(RedisCommand("CLUSTER", "SLOTS"))
                topology = try ClusterTopology.parse(clusterSlots: reply, answeredBy: node)
                return
            } catch {
                if error.requiresReconnect { drop(node) }
                lastError = error
            }
        }
        throw lastError
    }

    /// Runs the commands (see the type's documentation); replies in the same order.
    /// `onRetry(error, attempt)` is called before each back-off sleep (a node
    /// unreachable, the cluster down, a failover in progress).
    package func execute(_ commands: [ClusterCommand],
                        onRetry: (RedisError, Int) -> Void = { _, _ in }) throws(RedisError) -> [RedisReply] {
        var replies = [RedisReply?](repeating: nil, count: commands.count)
        // Pending commands: index, node (nil: look up the slot map), ASKING first.
        var pending: [(index: Int, node: ClusterTopology.Node?, asking: Bool)] = commands.indices.map { ($0, nil, false) }
        var stalledSince: Date?
        var attempt = 0
        var rounds = 0
        var lastError: RedisError?
        while !pending.isEmpty {
            // Redirections alone never sleep: a slot bounced between nodes
            // (a broken migration) must end in an error, not a busy loop.
            rounds += 1
            if rounds > Self.maxRounds && stalledSince == nil {
                throw RedisError(kind: .server("MOVED"), message: "still redirected after \(Self.maxRounds) rounds",
                                 context: "execute on \(endpoints)")
            }
            var groups: [ClusterTopology.Node: [(index: Int, asking: Bool)]] = [:]
            var order: [ClusterTopology.Node] = []
            var unrouted: [(Int, ClusterTopology.Node?, Bool)] = []
            for (index, node, asking) in pending {
                guard let target = node ?? topology.owners[commands[index].slot] else {
                    unrouted.append((index, nil, false))
                    continue
                }
                if groups[target] == nil { order.append(target) }
                groups[target, default: []].append((index, asking))
            }
            var next: [(index: Int, node: ClusterTopology.Node?, asking: Bool)] = unrouted
            var refresh = !unrouted.isEmpty
            var wait = !unrouted.isEmpty
            if !unrouted.isEmpty {
                lastError = RedisError(kind: .server("CLUSTERDOWN"), message: "slot of a command has no master",
                                       context: "execute on \(endpoints)")
            }
            var progressed = false
            for node in order {
                let group = groups[node] ?? []
                var pipeline = RedisPipeline()
                for (index, asking) in group {
                    if asking { pipeline.add(RedisCommand("ASKING")) }
                    pipeline.add(commands[index].command)
                }
                let acks = min(replicaAcks, topology.replicaCounts[node] ?? 0)
                if acks > 0 { pipeline.add(RedisCommand("WAIT", String(acks), String(replicaAckTimeoutMs))) }
                let nodeReplies: [RedisReply]
                do {
                    nodeReplies = try connection(to: node).execute(pipeline)
                } catch {
                    // Unreachable or broken: resend after a refresh (a failover moves its slots).
                    if error.requiresReconnect || error.isRetriable { drop(node) }
                    guard error.isRetriable || error.kind == .protocol else { throw error }
                    lastError = error
                    refresh = true
                    wait = true
                    next.append(contentsOf: group.map { ($0.index, nil, false) })
                    continue
                }
                if acks > 0, let last = nodeReplies.last, (last.int ?? 0) < Int64(acks) {
                    // Not replicated yet (or the replica is gone): resend after a refresh, never count it as written.
                    lastError = RedisError(kind: .server("NOREPLICAS"), message: "WAIT \(acks): \(last.int.map { "\($0) replica(s) acknowledged" } ?? "\(last)")",
                                           context: "execute on \(node)")
                    refresh = true
                    wait = true
                    next.append(contentsOf: group.map { ($0.index, nil, false) })
                    continue
                }
                var cursor = 0
                for (index, asking) in group {
                    if asking { cursor += 1 } // ASKING's own +OK
                    let reply = nodeReplies[cursor]
                    cursor += 1
                    guard let message = reply.errorMessage else {
                        replies[index] = reply
                        progressed = true
                        continue
                    }
                    if let redirect = ClusterRedirect(errorMessage: message) {
                        progressed = true
                        switch redirect.kind {
                        case .moved:
                            redirects.moved += 1
                            topology.assign(slot: redirect.slot, to: redirect.node)
                            refresh = true
                            next.append((index, redirect.node, false))
                        case .ask:
                            redirects.ask += 1
                            next.append((index, redirect.node, true))
                        }
                        continue
                    }
                    let prefix = RedisError.serverErrorPrefix(message)
                    if prefix == "NOSCRIPT" && !scripts.isEmpty {
                        do {
                            for script in scripts { try connection(to: node).loadScript(script) }
                        } catch {
                            drop(node)
                            wait = true
                        }
                        next.append((index, asking ? node : nil, asking))
                    } else if RedisError.transientServerPrefixes.contains(prefix) {
                        lastError = RedisError.server(message, context: "execute on \(node)")
                        if prefix == "READONLY" || prefix == "MASTERDOWN" { refresh = true; drop(node) }
                        wait = true
                        next.append((index, nil, false))
                    } else {
                        replies[index] = reply
                        progressed = true
                    }
                }
            }
            pending = next
            guard !pending.isEmpty else { break }
            if progressed && !wait { stalledSince = nil }
            if wait {
                let since = stalledSince ?? Date()
                stalledSince = since
                if Date().timeIntervalSince(since) * 1000 > Double(failoverTimeoutMs) || shouldStop() {
                    throw lastError ?? RedisError(kind: .timeout, message: "cluster did not recover", context: "execute on \(endpoints)")
                }
                attempt += 1
                if let lastError { onRetry(lastError, attempt) }
                sleep(milliseconds: backoff.delayMs(attempt: attempt))
            }
            if refresh {
                do { try refreshTopology() } catch { lastError = error }
            }
        }
        return replies.map { $0 ?? .null }
    }

    /// Rounds of redirections tolerated without a failure to wait out.
    static let maxRounds = 64

    /// One command, routed by `key`.
    package func command(key: [UInt8], _ command: RedisCommand) throws(RedisError) -> RedisReply {
        try execute([ClusterCommand(key: key, command: command)])[0]
    }

    /// Runs `command` on every master (key-less commands such as `INFO`);
    /// replies in the order of `topology.masters`. Connection errors are thrown.
    package func onEveryMaster(_ command: RedisCommand) throws(RedisError) -> [(node: ClusterTopology.Node, reply: RedisReply)] {
        var result: [(node: ClusterTopology.Node, reply: RedisReply)] = []
        for node in topology.masters {
            do {
                result.append((node, try connection(to: node).command(command)))
            } catch {
                if error.requiresReconnect || error.isRetriable { drop(node) }
                throw error
            }
        }
        return result
    }

    /// The connection to every node currently open (diagnostics).
    package var connectedNodes: [ClusterTopology.Node] { Array(connections.keys) }

    /// Closes every connection.
    package func close() {
        for connection in connections.values { connection.close() }
        connections.removeAll()
    }

    private func connection(to node: ClusterTopology.Node) throws(RedisError) -> RedisConnection {
        if let existing = connections[node], existing.isConnected { return existing }
        var endpoint = endpoints.seeds[0]
        endpoint.host = node.host
        endpoint.port = node.port
        endpoint.database = 0
        if connections[node] != nil { reconnects += 1 }
        let connection = try RedisConnection(endpoint: endpoint, connectTimeoutMs: connectTimeoutMs, commandTimeoutMs: commandTimeoutMs)
        connections[node] = connection
        return connection
    }

    private func drop(_ node: ClusterTopology.Node) {
        connections[node]?.close()
    }

    private func sleep(milliseconds: Int) {
        var remaining = milliseconds
        while remaining > 0 && !shouldStop() {
            let step = min(remaining, 50)
            usleep(UInt32(step) * 1000)
            remaining -= step
        }
    }
}
