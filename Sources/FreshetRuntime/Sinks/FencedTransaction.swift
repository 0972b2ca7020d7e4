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
        let (_, outcome) = try store.executeWatched(check: check, transaction: { checked in
            var current: [String: RedisReply] = [:]
            for (index, key) in epochKeys.enumerated() { current[key] = checked[1 + index] }
            plan = Plan(writes, current: current)
            return plan.transaction
        }, onRetry: onRetry)
        return plan.replies(outcome, writes)
    }

    /// What one round decided: per write, its commands in the transaction or its refusal.
    struct Plan {
        enum Decision {
            /// The write's operations are in the transaction.
            case inTransaction
            case refused(current: Int64?)
            case malformed(String)
        }

        var decisions: [Decision] = []
        var transaction = RedisPipeline()
        /// Per transaction command: its write (index in the group) and where
        /// its key sits in that write's encoding (to name a rejected key).
        var origins: [(write: Int, key: Range<Int>)] = []

        init() {}

        init(_ writes: ArraySlice<FencedWrite>, current: [String: RedisReply]) {
            // Re-framed operations take about the writes' own size, up to 7 bytes more
            // each (`*4\r\n$4\r\nZADD\r\n` for `$1\r\nZ\r\n`; only a rare trim takes more):
            // reserve that (no regrowth copies).
            transaction = RedisPipeline(reservingCapacity: writes.reduce(64) { $0 + $1.byteCount + 8 * $1.operationCount })
            for (index, write) in zip(0..., writes) {
                let held = current[write.epochKey]
                guard case .bulk(let bytes)? = held, bytes.elementsEqual(String(write.epoch).utf8) else {
                    decisions.append(.refused(current: held?.string.flatMap { Int64($0) }))
                    continue
                }
                let first = origins.count
                if let problem = add(write, index) {
                    transaction.truncate(toCount: first)
                    origins.removeSubrange(first...)
                    decisions.append(.malformed(problem))
                } else {
                    decisions.append(.inTransaction)
                }
            }
        }

        /// Adds `write`'s operations as commands, copying runs of their
        /// encoded arguments as they are; a description of the problem when
        /// they cannot be parsed (a bug; the caller drops what was added).
        private mutating func add(_ write: FencedWrite, _ writeIndex: Int) -> String? {
            // Names as `StaticString`: a literal alone would pick the `String` overload (slower).
            write.command.withArgumentReader(from: 5) { bytes, arguments in
                while let code = arguments.next() {
                    let at = arguments.count - 6  // the operation's first argument, from 0 after the epoch
                    guard code.content.count == 1, let key = arguments.next() else { return "malformed operation at \(at)" }
                    switch bytes[code.content.lowerBound] {
                    case UInt8(ascii: "H"):
                        guard let fieldCount = arguments.next(), let count = Self.integer(bytes[fieldCount.content]), count > 0 else {
                            return "malformed HSET at \(at)"
                        }
                        let fields = arguments.position
                        guard arguments.skip(2 * count) else { return "malformed HSET at \(at)" }
                        transaction.beginCommand(argumentCount: 2 + 2 * count)
                        transaction.appendArgument("HSET" as StaticString)
                        transaction.appendEncodedArguments(bytes[key.encoded])
                        transaction.appendEncodedArguments(bytes[fields..<arguments.position])
                    case UInt8(ascii: "Z"):
                        guard arguments.skip(2) else { return "malformed ZADD at \(at)" }
                        transaction.beginCommand(argumentCount: 4)
                        transaction.appendArgument("ZADD" as StaticString)
                        transaction.appendEncodedArguments(bytes[key.encoded.lowerBound..<arguments.position])
                    case UInt8(ascii: "T"):
                        guard let bound = arguments.next(), let keep = Self.integer(bytes[bound.content]) else { return "malformed trim at \(at)" }
                        // Keep the `keep` highest: remove ranks 0 ... -(keep + 1).
                        transaction.beginCommand(argumentCount: 4)
                        transaction.appendArgument("ZREMRANGEBYRANK" as StaticString)
                        transaction.appendEncodedArguments(bytes[key.encoded])
                        transaction.appendArgument("0" as StaticString)
                        transaction.appendArgument(-(keep + 1))
                    case UInt8(ascii: "D"):
                        transaction.beginCommand(argumentCount: 2)
                        transaction.appendArgument("DEL" as StaticString)
                        transaction.appendEncodedArguments(bytes[key.encoded])
                    case UInt8(ascii: "X"):
                        guard arguments.skip(1) else { return "malformed HDEL at \(at)" }
                        transaction.beginCommand(argumentCount: 3)
                        transaction.appendArgument("HDEL" as StaticString)
                        transaction.appendEncodedArguments(bytes[key.encoded.lowerBound..<arguments.position])
                    default:
                        return "unknown operation at \(at)"
                    }
                    transaction.endCommand()
                    origins.append((writeIndex, key.content))
                }
                return nil
            }
        }

        /// A non-negative decimal, nil when `digits` is anything else.
        static func integer(_ digits: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
            guard !digits.isEmpty, digits.count <= 18 else { return nil }
            var value = 0
            for digit in digits {
                guard digit >= 48 && digit <= 57 else { return nil }
                value = value * 10 + Int(digit - 48)
            }
            return value
        }

        /// One reply per write, from what EXEC answered.
        func replies(_ outcome: TransactionOutcome, _ writes: ArraySlice<FencedWrite>) -> [FencedWriteReply] {
            guard outcome.count == origins.count else {
                return decisions.map { decision in
                    if case .refused(let current) = decision { return .refusedByEpoch(current: current) }
                    return .failed("EXEC answered \(outcome.count) of \(origins.count) commands")
                }
            }
            var rejected = Array(repeating: [FencedWriteReply.RejectedKey](), count: decisions.count)
            for failure in outcome.errors {
                let origin = origins[failure.index]
                let key = writes[writes.startIndex + origin.write].command.withArgumentReader(from: 0) { bytes, _ in
                    Array(bytes[origin.key])
                }
                rejected[origin.write].append(.init(keyBytes: key, message: failure.message))
            }
            return decisions.enumerated().map { index, decision in
                switch decision {
                case .refused(let current): return .refusedByEpoch(current: current)
                case .malformed(let problem): return .failed("freshet: \(problem)")
                case .inTransaction: return .applied(rejected: rejected[index])
                }
            }
        }
    }
}
