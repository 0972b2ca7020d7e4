import Foundation
import FreshetRedis
import FreshetRuntime

/// An in-memory Redis for the engine driver: strings, hashes and sorted sets,
/// with the commands the engine sends (fenced writes as WATCH/MULTI/EXEC
/// transactions of HSET, ZADD, ZREMRANGEBYRANK, DEL and HDEL, or as the
/// fenced-write script by its SHA; the epoch script, HGETALL, HSCAN, HGET,
/// GET, SET [NX], DEL, EXISTS) and
/// those the oracle comparison reads (HEXISTS, ZREVRANGE, KEYS). Scripts are
/// recognised by their source or SHA and run as Swift here, with the same
/// reply contract (`FencedWriteReply`); anything else answers an error, so a
/// new command in the engine fails a test loudly instead of passing silently.
///
/// Thread-safety: one lock around the data; each pipeline runs under it as a
/// whole (the engine's writer thread and processing thread share one instance).
package final class InMemoryRedis: FeatureStoreReading, @unchecked Sendable {
    enum Value {
        case string([UInt8])
        case hash([String: [UInt8]])
        case zset([String: Double])
    }

    private let lock = NSLock()
    private var data: [String: Value] = [:]
    private var runIdValue = UUID().uuidString
    /// Every command run so far, by name (upper case): lets a test see what the engine sent.
    private var counts: [String: Int] = [:]
    private var delayMs = 0
    private var evictionValue = RedisEvictionSetting(policy: "noeviction", maxmemoryBytes: 0)

    package init() {}

    /// What `INFO memory` would say (Redis's default: noeviction, no limit).
    package var eviction: RedisEvictionSetting {
        get { lock.lock(); defer { lock.unlock() }; return evictionValue }
        set { lock.lock(); evictionValue = newValue; lock.unlock() }
    }

    /// A new connection-like store over this data (what the engine calls a store).
    package func makeStore() -> any RedisStore { Store(redis: self) }

    /// Forgets everything and changes `run_id`: Redis restarted without persistence.
    package func restartEmpty() {
        lock.lock(); defer { lock.unlock() }
        data.removeAll()
        runIdValue = UUID().uuidString
    }

    /// How many times each command ran.
    package var commandCounts: [String: Int] {
        lock.lock(); defer { lock.unlock() }
        return counts
    }

    /// How long each pipeline of fenced writes (features, checkpoints) takes
    /// before it applies, ms (0: none): keeps a batch in flight in the writer
    /// while the processing thread goes on. Other commands (epochs, restore
    /// reads) answer at once, so they overtake writes nobody waited for.
    package var pipelineDelayMs: Int {
        get { lock.lock(); defer { lock.unlock() }; return delayMs }
        set { lock.lock(); delayMs = newValue; lock.unlock() }
    }

    /// Every key, sorted.
    package var allKeys: [String] {
        lock.lock(); defer { lock.unlock() }
        return data.keys.sorted()
    }

    var runId: String {
        lock.lock(); defer { lock.unlock() }
        return runIdValue
    }

    // MARK: - FeatureStoreReading

    package func hgetall(_ key: String) throws -> [(field: String, value: [UInt8])] {
        lock.lock(); defer { lock.unlock() }
        guard case .hash(let fields)? = data[key] else { return [] }
        return fields.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    package func command(_ arguments: [String]) throws -> RedisReply {
        try command(arguments.map { Array($0.utf8) })
    }

    package func command(_ arguments: [[UInt8]]) throws -> RedisReply {
        execute([arguments])[0]
    }

    package func keys(matching pattern: String) throws -> [String] {
        lock.lock(); defer { lock.unlock() }
        return data.keys.filter { Self.matches($0, pattern) }.sorted()
    }

    // MARK: - Commands

    /// `RedisStore.executeWatched`: the check, the decision and the
    /// transaction under the lock as one step, so no other client changes a
    /// watched key in between (EXEC is never aborted here).
    func executeWatched(check: [[[UInt8]]], transaction: ([RedisReply]) -> RedisPipeline) -> (check: [RedisReply], outcome: TransactionOutcome) {
        let delay = pipelineDelayMs
        if delay > 0 { Thread.sleep(forTimeInterval: Double(delay) / 1000) }
        lock.lock(); defer { lock.unlock() }
        let checked = check.map { run($0) }
        let commands = transaction(checked).commands.map(\.arguments)
        if commands.isEmpty { return (checked, TransactionOutcome(count: 0, errors: [])) }
        counts["MULTI", default: 0] += 1
        counts["EXEC", default: 0] += 1
        let failures = commands.map { run($0) }.enumerated().compactMap { index, reply in
            reply.errorMessage.map { TransactionOutcome.Failure(index: index, message: $0) }
        }
        return (checked, TransactionOutcome(count: commands.count, errors: failures))
    }

    /// Runs commands atomically (one pipeline), one reply each.
    func execute(_ commands: [[[UInt8]]]) -> [RedisReply] {
        let delay = pipelineDelayMs
        if delay > 0, commands.contains(where: { $0.first == Array("EVALSHA".utf8) }) {
            Thread.sleep(forTimeInterval: Double(delay) / 1000)
        }
        lock.lock(); defer { lock.unlock() }
        return commands.map { run($0) }
    }

    private func run(_ arguments: [[UInt8]]) -> RedisReply {
        guard let first = arguments.first else { return .error("ERR empty command") }
        let name = String(decoding: first, as: UTF8.self).uppercased()
        counts[name, default: 0] += 1
        let args = Array(arguments.dropFirst())
        func text(_ index: Int) -> String { String(decoding: args[index], as: UTF8.self) }
        switch name {
        case "EVALSHA":
            guard args.count >= 2, text(0) == FencedWrite.redisScript.sha1, text(1) == "1" else {
                return .error("NOSCRIPT the in-memory Redis runs only the fenced-write script by SHA")
            }
            return fencedWrite(epochKey: text(2), epoch: args[3], operations: Array(args.dropFirst(4)))
        case "EVAL":
            guard args.count == 5, text(0) == StreamProcessor.acquireEpochScript, text(1) == "1" else {
                return .error("ERR the in-memory Redis does not know this script")
            }
            return acquireEpoch(key: text(2), nowMs: Int64(text(3)) ?? 0, ours: text(4).isEmpty ? nil : Int64(text(4)))
        case "GET":
            guard args.count == 1 else { return .error("ERR wrong number of arguments for 'get'") }
            switch data[text(0)] {
            case nil: return .null
            case .string(let bytes)?: return .bulk(bytes)
            default: return Self.wrongType
            }
        case "SET":
            guard args.count >= 2 else { return .error("ERR wrong number of arguments for 'set'") }
            let nx = args.count > 2 && text(2).uppercased() == "NX"
            if nx && data[text(0)] != nil { return .null }
            data[text(0)] = .string(args[1])
            return .status("OK")
        case "DEL":
            var removed: Int64 = 0
            for index in args.indices where data.removeValue(forKey: text(index)) != nil { removed += 1 }
            return .integer(removed)
        case "EXISTS":
            return .integer(Int64(args.indices.filter { data[text($0)] != nil }.count))
        case "HGETALL":
            guard args.count == 1 else { return .error("ERR wrong number of arguments for 'hgetall'") }
            switch data[text(0)] {
            case nil: return .array([])
            case .hash(let fields)?: return .array(fields.sorted { $0.key < $1.key }.flatMap { [.bulk(Array($0.key.utf8)), .bulk($0.value)] })
            default: return Self.wrongType
            }
        case "HLEN":
            guard args.count == 1 else { return .error("ERR wrong number of arguments for 'hlen'") }
            switch data[text(0)] {
            case nil: return .integer(0)
            case .hash(let fields)?: return .integer(Int64(fields.count))
            default: return Self.wrongType
            }
        case "HSCAN":
            // One page holds everything: the cursor is always "0" after it.
            guard args.count >= 2 else { return .error("ERR wrong number of arguments for 'hscan'") }
            switch data[text(0)] {
            case nil: return .array([.bulk(Array("0".utf8)), .array([])])
            case .hash(let fields)?:
                return .array([.bulk(Array("0".utf8)),
                               .array(fields.sorted { $0.key < $1.key }.flatMap { [.bulk(Array($0.key.utf8)), .bulk($0.value)] })])
            default: return Self.wrongType
            }
        case "HGET", "HEXISTS":
            guard args.count == 2 else { return .error("ERR wrong number of arguments for '\(name.lowercased())'") }
            switch data[text(0)] {
            case nil: return name == "HGET" ? .null : .integer(0)
            case .hash(let fields)?:
                let value = fields[text(1)]
                return name == "HGET" ? (value.map { .bulk($0) } ?? .null) : .integer(value == nil ? 0 : 1)
            default: return Self.wrongType
            }
        case "ZREVRANGE":
            guard args.count >= 3, let start = Int(text(1)), let stop = Int(text(2)) else { return .error("ERR syntax error") }
            switch data[text(0)] {
            case nil: return .array([])
            case .zset(let members)?:
                let ordered = Self.ascending(members).reversed().map(\.member)
                let from = start < 0 ? max(0, ordered.count + start) : start
                let to = min(ordered.count - 1, stop < 0 ? ordered.count + stop : stop)
                guard from <= to else { return .array([]) }
                return .array(ordered[from...to].map { .bulk(Array($0.utf8)) })
            default: return Self.wrongType
            }
        case "KEYS":
            guard args.count == 1 else { return .error("ERR wrong number of arguments for 'keys'") }
            return .array(data.keys.filter { Self.matches($0, text(0)) }.sorted().map { .bulk(Array($0.utf8)) })
        case "PING":
            return .status("PONG")
        case "WATCH", "UNWATCH":
            // Each `executeWatched` round runs under the lock as a whole: nothing can change a watched key.
            return .status("OK")
        case "HSET":
            guard args.count >= 3, args.count % 2 == 1 else { return .error("ERR wrong number of arguments for 'hset'") }
            let pairs = stride(from: 1, to: args.count, by: 2).map { (text($0), args[$0 + 1]) }
            return hashSet(text(0), pairs) ? .integer(Int64(pairs.count)) : Self.wrongType
        case "ZADD":
            guard args.count == 3, let score = Double(text(1)) else { return .error("ERR syntax error") }
            return sortedSetAdd(text(0), score: score, member: text(2)) ? .integer(1) : Self.wrongType
        case "ZREMRANGEBYRANK":
            // Only the form the engine sends: 0 -(keep + 1).
            guard args.count == 3, text(1) == "0", let stop = Int(text(2)), stop < 0 else {
                return .error("ERR the in-memory Redis supports only ZREMRANGEBYRANK key 0 -n")
            }
            return sortedSetRemoveLowest(text(0), keeping: -stop - 1) ? .integer(0) : Self.wrongType
        case "HDEL":
            guard args.count == 2 else { return .error("ERR the in-memory Redis supports only HDEL key field") }
            return hashDelete(text(0), field: text(1)) ? .integer(1) : Self.wrongType
        default:
            return .error("ERR the in-memory Redis does not implement \(name)")
        }
    }

    static let wrongType = RedisReply.error("WRONGTYPE Operation against a key holding the wrong kind of value")

    /// `StreamProcessor.acquireEpochScript`, in Swift.
    private func acquireEpoch(key: String, nowMs: Int64, ours: Int64?) -> RedisReply {
        var current: Int64 = 0
        if case .string(let bytes)? = data[key] { current = Int64(String(decoding: bytes, as: UTF8.self)) ?? 0 }
        if let ours, current > ours { return .array([.integer(-1), .integer(current)]) }
        let epoch = max(current + 1, nowMs)
        data[key] = .string(Array(String(epoch).utf8))
        return .array([.integer(epoch), .integer(current)])
    }

    /// `FencedWrite.script`, in Swift: the epoch check, then the operations
    /// (H: HSET key count field value..., Z: ZADD key score member, T: keep
    /// the `keep` highest of a sorted set, D: DEL key, X: HDEL key field).
    private func fencedWrite(epochKey: String, epoch: [UInt8], operations ops: [[UInt8]]) -> RedisReply {
        let current: [UInt8]?
        if case .string(let bytes)? = data[epochKey] { current = bytes } else { current = nil }
        guard current == epoch else {
            let shown = current.map { String(decoding: $0, as: UTF8.self) } ?? "missing"
            return .error("FENCED epoch \(String(decoding: epoch, as: UTF8.self)) is stale, current is \(shown)")
        }
        var result: [RedisReply] = [.integer(0)]
        var applied: Int64 = 0
        var i = 0
        func text(_ index: Int) -> String { String(decoding: ops[index], as: UTF8.self) }
        while i + 1 < ops.count {
            let op = text(i)
            let key = text(i + 1)
            var ok = true
            switch op {
            case "H":
                let count = Int(text(i + 2)) ?? 0
                ok = hashSet(key, (0..<count).map { (text(i + 3 + 2 * $0), ops[i + 4 + 2 * $0]) })
                i += 3 + 2 * count
            case "Z":
                ok = sortedSetAdd(key, score: Double(text(i + 2)) ?? .nan, member: text(i + 3))
                i += 4
            case "T":
                ok = sortedSetRemoveLowest(key, keeping: Int(text(i + 2)) ?? 0)
                i += 3
            case "D":
                data[key] = nil
                i += 2
            case "X":
                ok = hashDelete(key, field: text(i + 2))
                i += 3
            default:
                return .error("freshet: unknown operation \(op)")
            }
            if ok {
                applied += 1
            } else {
                result.append(.bulk(Array(key.utf8)))
                result.append(.bulk(Array("WRONGTYPE Operation against a key holding the wrong kind of value".utf8)))
            }
        }
        result[0] = .integer(applied)
        return .array(result)
    }

    /// HSET; false (nothing written) when the key holds another type.
    private func hashSet(_ key: String, _ pairs: [(String, [UInt8])]) -> Bool {
        var fields: [String: [UInt8]]
        switch data[key] {
        case nil: fields = [:]
        case .hash(let existing)?: fields = existing
        default: return false
        }
        for (field, value) in pairs { fields[field] = value }
        data[key] = .hash(fields)
        return true
    }

    /// ZADD of one member; false when the key holds another type.
    private func sortedSetAdd(_ key: String, score: Double, member: String) -> Bool {
        switch data[key] {
        case nil: data[key] = .zset([member: score])
        case .zset(var members)?:
            members[member] = score
            data[key] = .zset(members)
        default: return false
        }
        return true
    }

    /// Removes all but the `keep` highest-scored members; false when the key holds another type.
    private func sortedSetRemoveLowest(_ key: String, keeping keep: Int) -> Bool {
        switch data[key] {
        case nil: return true
        case .zset(let members)?:
            let ordered = Self.ascending(members)
            var kept = members
            for entry in ordered.prefix(max(0, ordered.count - keep)) { kept[entry.member] = nil }
            data[key] = kept.isEmpty ? nil : .zset(kept)
            return true
        default: return false
        }
    }

    /// HDEL of one field; false when the key holds another type.
    private func hashDelete(_ key: String, field: String) -> Bool {
        switch data[key] {
        case nil: return true
        case .hash(var fields)?:
            fields[field] = nil
            data[key] = fields.isEmpty ? nil : .hash(fields)
            return true
        default: return false
        }
    }

    /// Members by score, then by member (Redis's order).
    static func ascending(_ members: [String: Double]) -> [(member: String, score: Double)] {
        members.map { ($0.key, $0.value) }.sorted { a, b in
            a.score != b.score ? a.score < b.score : Array(a.member.utf8).lexicographicallyPrecedes(Array(b.member.utf8))
        }
    }

    /// Glob matching with `*` only (what the tests use).
    static func matches(_ key: String, _ pattern: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return key == pattern }
        guard key.hasPrefix(parts[0]), key.hasSuffix(parts[parts.count - 1]),
              key.count >= parts[0].count + parts[parts.count - 1].count else { return false }
        var rest = Substring(key.dropFirst(parts[0].count).dropLast(parts[parts.count - 1].count))
        for middle in parts.dropFirst().dropLast() where !middle.isEmpty {
            guard let range = rest.range(of: middle) else { return false }
            rest = rest[range.upperBound...]
        }
        return true
    }

    /// One engine-side store (the writer's, the control connection's) over the shared data.
    final class Store: RedisStore {
        let redis: InMemoryRedis
        var shouldStop: () -> Bool = { false }
        init(redis: InMemoryRedis) { self.redis = redis }

        func execute(_ pipeline: RedisPipeline, onRetry: (RedisError, Int) -> Void) throws(RedisError) -> [RedisReply] {
            redis.execute(pipeline.commands.map(\.arguments))
        }

        func executeWatched(check: RedisPipeline, transaction: ([RedisReply]) -> RedisPipeline,
                            onRetry: (RedisError, Int) -> Void) throws(RedisError) -> (check: [RedisReply], outcome: TransactionOutcome) {
            redis.executeWatched(check: check.commands.map(\.arguments), transaction: transaction)
        }

        /// The in-memory store never refuses or fails: one attempt is the whole call.
        func executeOnce(_ pipeline: RedisPipeline) throws(RedisError) -> [RedisReply] {
            redis.execute(pipeline.commands.map(\.arguments))
        }

        func registerScript(_ script: RedisScript) {}

        func serverRunId(onRetry: (RedisError, Int) -> Void) throws(RedisError) -> String { redis.runId }
        func evictionSettings(onRetry: (RedisError, Int) -> Void) throws(RedisError) -> [String: RedisEvictionSetting] {
            ["memory": redis.eviction]
        }

        func close() {}
    }
}
