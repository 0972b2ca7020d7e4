import Foundation
import FreshetRedis

/// What the oracle comparisons read: one Redis (`RedisConnection`) or a
/// cluster (`ClusterStoreReader`), so the same assertions check both.
package protocol FeatureStoreReading {
    func hgetall(_ key: String) throws -> [(field: String, value: [UInt8])]
    /// A command routed by its first argument after the name (its key).
    func command(_ arguments: [String]) throws -> RedisReply
    func command(_ arguments: [[UInt8]]) throws -> RedisReply
    /// Every key matching a `SCAN MATCH` pattern.
    func keys(matching pattern: String) throws -> [String]
}

extension RedisConnection: FeatureStoreReading {
    package func keys(matching pattern: String) throws -> [String] {
        try Self.scan(self, pattern)
    }

    package static func scan(_ connection: RedisConnection, _ pattern: String) throws -> [String] {
        var cursor = "0"
        var keys: [String] = []
        repeat {
            let reply = try connection.command(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"])
            guard let parts = reply.array, parts.count == 2 else { throw TestFailure("bad SCAN reply \(reply)") }
            cursor = parts[0].string ?? "0"
            keys += (parts[1].array ?? []).compactMap(\.string)
        } while cursor != "0"
        return keys
    }
}

/// Reads a Redis Cluster the way a serving reader would (each key from its
/// slot's master); `keys(matching:)` scans every master.
package final class ClusterStoreReader: FeatureStoreReading {
    package let client: RedisClusterClient

    package init(url: String) throws {
        client = try RedisClusterClient(endpoints: ClusterEndpoints(url: url), failoverTimeoutMs: 60_000)
    }

    package func hgetall(_ key: String) throws -> [(field: String, value: [UInt8])] {
        try command(["HGETALL", key]).fieldValuePairs ?? []
    }

    package func command(_ arguments: [String]) throws -> RedisReply {
        try command(arguments.map { Array($0.utf8) })
    }

    package func command(_ arguments: [[UInt8]]) throws -> RedisReply {
        guard arguments.count >= 2 else { throw TestFailure("a cluster command needs a key: \(arguments)") }
        return try client.command(key: arguments[1], RedisCommand(arguments: arguments))
    }

    package func keys(matching pattern: String) throws -> [String] {
        try client.refreshTopology()
        var keys: [String] = []
        for node in client.topology.masters {
            let connection = try RedisConnection(endpoint: RedisEndpoint(url: "redis://\(node.host):\(node.port)"))
            defer { connection.close() }
            keys += try RedisConnection.scan(connection, pattern)
        }
        return keys
    }
}
