/// Where a Redis Cluster is: seed nodes (any reachable one yields the whole
/// topology) and the credentials every node shares.
///
/// URL form: `redis+cluster://[user:password@]host:port[,host:port...]`.
/// Seeds need not be masters, nor complete: the client learns the others
/// with `CLUSTER SLOTS`. A cluster has no databases, so a path or `?db=` is refused.
package struct ClusterEndpoints: Sendable, Equatable, CustomStringConvertible {
    package var seeds: [RedisEndpoint]

    package static let scheme = "redis+cluster"

    package init(seeds: [RedisEndpoint]) {
        self.seeds = seeds
    }

    /// True when `url` names a cluster (`redis+cluster://...`).
    package static func isClusterURL(_ url: String) -> Bool {
        url.lowercased().hasPrefix("\(scheme)://")
    }

    /// Parses a `redis+cluster://` URL. Throws `.invalidArgument` naming the URL (password redacted).
    package init(url: String) throws(RedisError) {
        let redacted = RedisEndpoint.redactURL(url)
        func fail(_ reason: String) -> RedisError {
            RedisError(kind: .invalidArgument, message: reason, context: "parsing Redis Cluster URL \"\(redacted)\"")
        }
        guard Self.isClusterURL(url) else { throw fail("expected \(Self.scheme)://host:port[,host:port...]") }
        var rest = Substring(url.dropFirst(Self.scheme.count + 3))
        var userInfo = ""
        if let at = rest.lastIndex(of: "@") {
            userInfo = String(rest[...at])
            rest = rest[rest.index(after: at)...]
        }
        guard !rest.contains("/"), !rest.contains("?") else {
            throw fail("a cluster has no databases: no /db or ?db= (and no path)")
        }
        let hosts = rest.split(separator: ",", omittingEmptySubsequences: false)
        guard !hosts.isEmpty, hosts.allSatisfy({ !$0.isEmpty }) else { throw fail("expected a comma-separated list of host:port") }
        var seeds: [RedisEndpoint] = []
        for host in hosts {
            do {
                seeds.append(try RedisEndpoint(url: "redis://\(userInfo)\(host)"))
            } catch {
                throw fail("seed \"\(host)\": \(error.message)")
            }
        }
        self.init(seeds: seeds)
    }

    /// The URL with the password shown as `***`.
    package var description: String {
        guard let first = seeds.first else { return "\(Self.scheme)://" }
        var userInfo = ""
        if first.password != nil { userInfo = "\(first.username ?? ""):***@" } else if let user = first.username { userInfo = "\(user)@" }
        let hosts = seeds.map { ($0.host.contains(":") ? "[\($0.host)]" : $0.host) + ":\($0.port)" }
        return "\(Self.scheme)://\(userInfo)\(hosts.joined(separator: ","))"
    }
}
