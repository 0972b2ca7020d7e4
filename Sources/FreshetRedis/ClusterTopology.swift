/// Which node serves each of the 16384 slots, as reported by `CLUSTER SLOTS`.
///
/// Only masters are kept (Freshet writes); a slot without an owner maps to nil
/// (the cluster is incomplete or failing over).
package struct ClusterTopology: Sendable, Equatable {
    /// A node's address as the cluster announces it.
    package struct Node: Sendable, Hashable, CustomStringConvertible {
        package var host: String
        package var port: Int
        package init(host: String, port: Int) { self.host = host; self.port = port }
        package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// Parses `host:port` (as in MOVED/ASK replies; IPv6 hosts contain colons, the port follows the last one).
        package init?(_ text: Substring) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
            var host = text[..<colon]
            if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
            self.init(host: String(host), port: port)
        }
    }

    /// Master of each slot (index = slot); nil when unassigned.
    package private(set) var owners: [Node?]

    /// Replicas each master had when the topology was read (failed replicas are not listed by `CLUSTER SLOTS`).
    package private(set) var replicaCounts: [Node: Int] = [:]

    package init() {
        owners = Array(repeating: nil, count: ClusterSlot.count)
    }

    /// The masters that own at least one slot.
    package var masters: [Node] { Array(Set(owners.compactMap { $0 })).sorted { "\($0)" < "\($1)" } }

    package mutating func assign(slot: Int, to node: Node) {
        guard (0..<ClusterSlot.count).contains(slot) else { return }
        owners[slot] = node
    }

    /// Parses a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ...], replica...], ...]`.
    /// An empty or `?` host means "the node that answered" (`answeredBy`).
    package static func parse(clusterSlots reply: RedisReply, answeredBy: Node) throws(RedisError) -> ClusterTopology {
        func bad(_ why: String) -> RedisError {
            RedisError(kind: .protocol, message: "unexpected CLUSTER SLOTS reply: \(why)", context: "CLUSTER SLOTS on \(answeredBy)")
        }
        guard let ranges = reply.array else { throw bad("not an array") }
        var topology = ClusterTopology()
        for range in ranges {
            guard let parts = range.array, parts.count >= 3,
                  let start = parts[0].int, let end = parts[1].int,
                  let master = parts[2].array, master.count >= 2,
                  let host = master[0].string, let port = master[1].int,
                  0 <= start, start <= end, end < ClusterSlot.count else { throw bad("range \(range)") }
            let node = Node(host: host.isEmpty || host == "?" ? answeredBy.host : host, port: Int(port))
            for slot in Int(start)...Int(end) { topology.owners[slot] = node }
            topology.replicaCounts[node] = max(topology.replicaCounts[node] ?? 0, parts.count - 3)
        }
        return topology
    }
}

/// A redirection in a cluster's error reply: `MOVED <slot> <host:port>` (the
/// slot has a new owner: update the map) or `ASK <slot> <host:port>` (the slot
/// is migrating: send this one command there, preceded by `ASKING`).
package struct ClusterRedirect: Sendable, Equatable {
    package enum Kind: Sendable, Equatable { case moved, ask }
    package var kind: Kind
    package var slot: Int
    package var node: ClusterTopology.Node

    /// Parses an error reply's message; nil when it is not a redirection.
    package init?(errorMessage: String) {
        let parts = errorMessage.split(separator: " ")
        guard parts.count == 3, let slot = Int(parts[1]), let node = ClusterTopology.Node(parts[2]) else { return nil }
        switch parts[0] {
        case "MOVED": kind = .moved
        case "ASK": kind = .ask
        default: return nil
        }
        self.slot = slot
        self.node = node
    }
}
