import FreshetRedis

/// Fenced writes applied on one Redis as an optimistic transaction instead
/// of one Lua script call each.
///
/// Why: Redis copies every argument of a script call into a Lua string and
/// each `redis.call` back out again; for the feature path that doubled the
/// server's CPU per written key (measured with 200,000 `HSET`s of a user's
/// three fields: 2.0-3.4 µs a key as plain or `MULTI` commands, 6.2-7.1 µs
/// through a script), and Redis shares the cores with Freshet.
///
/// The protocol, per group of writes (`RedisStore.executeWatched`):
/// 1. `WATCH` every task's epoch key, then `GET` each.
/// 2. Writes whose epoch matches go between `MULTI` and `EXEC` as plain
///    commands (`HSET`, `ZADD`, `ZREMRANGEBYRANK`, `DEL`, `HDEL`); the others
///    are answered `refusedByEpoch` without touching Redis.
/// 3. If an epoch key changed between the `GET` and `EXEC` (a new owner
///    took a task over), `EXEC` applies nothing and the round starts again.
///
/// So a write lands only while its epoch is current, as with the script
/// (`FencedWrite.script`, still used on a Redis Cluster and by one-off
/// writes), and the replies keep the script's contract (`FencedWriteReply`):
/// a key Redis refuses for good (`WRONGTYPE`) is listed, the rest applies.
///
/// Groups: writes are taken in order into groups of at most `groupBytes`
/// encoded bytes (at least one write each), so one `EXEC` never holds Redis
/// much longer than one task's checkpoint script did.
package enum FencedTransaction {
    /// Default upper size of one transaction's writes, bytes.
    package static let groupBytes = 1 << 20

    /// Applies `writes` through `store` (one Redis), in order, one group at a
    /// time; one reply per write.
    /// - Throws: what `executeWatched` throws (the writes of that group and
    ///   later ones did not run; earlier groups did).
    package static func apply(_ writes: [FencedWrite], through store: any RedisStore, groupBytes: Int = groupBytes,
                              onRetry: (RedisError, Int) -> Void) throws(RedisError) -> [FencedWriteReply] {
        var replies: [FencedWriteReply] = []
        replies.reserveCapacity(writes.count)
        var start = 0
        while start < writes.count {
            var end = start + 1
            var bytes = writes[start].byteCount
            while end < writes.count && bytes + writes[end].byteCount <= groupBytes {
                bytes += writes[end].byteCount
                end += 1
            }
            replies += try applyGroup(writes[start..<end], through: store, onRetry: onRetry)
            start = end
        }
        return replies
    }

    private static func applyGroup(_ writes: ArraySlice<FencedWrite>, through store: any RedisStore,
                                   onRetry: (RedisError, Int) -> Void) throws(RedisError) -> [FencedWriteReply] {
        var epochKeys: [String] = []
        for write in writes where !epochKeys.contains(write.epochKey) { epochKeys.append(write.epochKey) }
        var check = RedisPipeline()
        check.add(RedisCommand("WATCH", epochKeys))
        for key in epochKeys { check.add(RedisCommand("GET", key)) }

        var plan = Plan()
        let (_, results) = try store.executeWatched(check: check, transaction: { checked in
            var current: [String: RedisReply] = [:]
            for (index, key) in epochKeys.enumerated() { current[key] = checked[1 + index] }
            plan = Plan(writes, current: current)
            return plan.transaction
        }, onRetry: onRetry)
        return plan.replies(results)
    }

    /// What one round decided: per write, its commands in the transaction or its refusal.
    struct Plan {
        enum Decision {
            case commands(Range<Int>)
            case refused(current: Int64?)
            case malformed(String)
        }

        var decisions: [Decision] = []
        var transaction = RedisPipeline()
        /// The key of each transaction command (for the keys Redis rejects).
        var keys: [ArraySlice<UInt8>] = []

        init() {}

        init(_ writes: ArraySlice<FencedWrite>, current: [String: RedisReply]) {
            for write in writes {
                let held = current[write.epochKey]
                guard case .bulk(let bytes)? = held, bytes.elementsEqual(String(write.epoch).utf8) else {
                    decisions.append(.refused(current: held?.string.flatMap { Int64($0) }))
                    continue
                }
                let first = keys.count
                if let problem = add(write) {
                    decisions.append(.malformed(problem))
                } else {
                    decisions.append(.commands(first..<keys.count))
                }
            }
        }

        /// Adds `write`'s operations as commands; a description of the problem
        /// when they cannot be parsed (a bug: nothing of that write is added).
        private mutating func add(_ write: FencedWrite) -> String? {
            let ops = write.command.argumentSlices.dropFirst(5)
            var parsed = RedisPipeline()
            var parsedKeys: [ArraySlice<UInt8>] = []
            var i = ops.startIndex
            while i < ops.endIndex {
                guard ops[i].count == 1, let code = ops[i].first, i + 1 < ops.endIndex else {
                    return "malformed operation at \(i - ops.startIndex)"
                }
                let key = ops[i + 1]
                switch code {
                case UInt8(ascii: "H"):
                    guard i + 2 < ops.endIndex, let count = Int(String(decoding: ops[i + 2], as: UTF8.self)),
                          i + 3 + 2 * count <= ops.endIndex else { return "malformed HSET at \(i - ops.startIndex)" }
                    parsed.add("HSET", ops[(i + 1)...(i + 1)], then: ops[(i + 3)..<(i + 3 + 2 * count)])
                    i += 3 + 2 * count
                case UInt8(ascii: "Z"):
                    guard i + 4 <= ops.endIndex else { return "malformed ZADD at \(i - ops.startIndex)" }
                    parsed.add("ZADD", ops[(i + 1)..<(i + 4)], then: [][...])
                    i += 4
                case UInt8(ascii: "T"):
                    guard i + 3 <= ops.endIndex, let keep = Int(String(decoding: ops[i + 2], as: UTF8.self)) else {
                        return "malformed trim at \(i - ops.startIndex)"
                    }
                    // Keep the `keep` highest: remove ranks 0 ... -(keep + 1).
                    parsed.add("ZREMRANGEBYRANK", key, ArraySlice("0".utf8), ArraySlice(String(-(keep + 1)).utf8))
                    i += 3
                case UInt8(ascii: "D"):
                    parsed.add("DEL", key)
                    i += 2
                case UInt8(ascii: "X"):
                    guard i + 3 <= ops.endIndex else { return "malformed HDEL at \(i - ops.startIndex)" }
                    parsed.add("HDEL", key, ops[i + 2])
                    i += 3
                default:
                    return "unknown operation \(String(decoding: ops[i], as: UTF8.self))"
                }
                parsedKeys.append(key)
            }
            transaction.add(contentsOf: parsed)
            keys += parsedKeys
            return nil
        }

        /// One reply per write, from EXEC's `results` (one per transaction command).
        func replies(_ results: [RedisReply]) -> [FencedWriteReply] {
            decisions.map { decision in
                switch decision {
                case .refused(let current):
                    return .refusedByEpoch(current: current)
                case .malformed(let problem):
                    return .failed("freshet: \(problem)")
                case .commands(let range):
                    var rejected: [FencedWriteReply.RejectedKey] = []
                    for index in range {
                        guard index < results.count else { return .failed("EXEC answered \(results.count) of \(keys.count) commands") }
                        if let message = results[index].errorMessage {
                            rejected.append(.init(key: String(decoding: keys[index], as: UTF8.self), message: message))
                        }
                    }
                    return .applied(rejected: rejected)
                }
            }
        }
    }
}
