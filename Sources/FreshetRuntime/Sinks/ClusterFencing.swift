import FreshetRedis

/// Fenced writes on a Redis Cluster, where one script may only touch keys of
/// one slot (docs/OPERATIONS.md, "Redis Cluster").
///
/// A task's `FencedWrite` is split by slot; each part runs as one script on
/// the slot's master, every key declared:
/// - the part in the slot of the task's epoch key (its checkpoint: state,
///   meta, embedding rows are hash-tagged by task, `RedisKeys.hashTagged`)
///   runs `FencedWrite.script`, exactly as on one Redis: the epoch must equal
///   the task's epoch key, and a missing or older key reads as a lost store;
/// - every other part runs `ClusterFencing.script` against the slot's fence
///   hash (`RedisKeys.slotFence`), which holds per task the highest epoch that
///   wrote there: a write below the mark is refused (`FENCED`), a write above
///   it raises the mark, then applies its operations.
/// A new owner raises the task's epoch key at takeover, so a zombie's
/// checkpoints are refused at once; its feature writes are refused in every
/// slot the new owner has written since. Before that, a zombie can only write
/// keys it changed after the checkpoint the new owner restored, and the new
/// owner, replaying the same input from there, writes them again (and from
/// then on that slot refuses the zombie). Atomicity is per slot: a flush is no
/// longer all-or-nothing across slots, which is harmless because the
/// checkpoint follows the acknowledged flush and every value is absolute.
package enum ClusterFencing {
    package static let redisScript = RedisScript(source: script)

    /// One script call per slot that `write` touches, in the order of each slot's first operation.
    /// Throws when the write's operations cannot be parsed (a bug, not an input).
    package static func commands(for write: FencedWrite, keys: RedisKeys) throws(RedisError) -> [ClusterCommand] {
        // Views into the write's encoding: a flush holds thousands of fields, and copying each
        // into an array of its own doubled the writer's CPU on a cluster.
        var bySlot: [Int: (keys: [ArraySlice<UInt8>], ops: [ArraySlice<UInt8>])] = [:]
        var order: [Int] = []
        let ops = write.command.argumentSlices.dropFirst(5)
        var i = ops.startIndex
        func fail() -> RedisError {
            RedisError(kind: .invalidArgument, message: "malformed operations at \(i - ops.startIndex)", context: "ClusterFencing(\(write.task))")
        }
        while i < ops.endIndex {
            let width: Int
            guard ops[i].count == 1, let code = ops[i].first else { throw fail() }
            switch code {
            case UInt8(ascii: "H"):
                guard i + 2 < ops.endIndex, let count = Int(String(decoding: ops[i + 2], as: UTF8.self)) else { throw fail() }
                width = 3 + 2 * count
            case UInt8(ascii: "Z"): width = 4
            case UInt8(ascii: "T"): width = 3
            case UInt8(ascii: "D"): width = 2
            case UInt8(ascii: "X"): width = 3
            default: throw fail()
            }
            guard i + width <= ops.endIndex else { throw fail() }
            let key = ops[i + 1]
            let slot = ClusterSlot.of(key)
            if bySlot[slot] == nil { order.append(slot); bySlot[slot] = ([], []) }
            if !(bySlot[slot]?.keys.contains(key) ?? false) { bySlot[slot]?.keys.append(key) }
            bySlot[slot]?.ops.append(contentsOf: ops[i..<(i + width)])
            i += width
        }
        let epochKey = Array(write.epochKey.utf8)
        let epochSlot = ClusterSlot.of(epochKey)
        return order.map { slot in
            let part = bySlot[slot] ?? ([], [])
            var command = RedisCommand("EVALSHA")
            if slot == epochSlot {
                // ARGV as on one Redis (epoch, ops); the extra keys are declared only.
                command.append(FencedWrite.redisScript.sha1)
                command.append(1 + part.keys.count)
                command.append(epochKey)
                for key in part.keys { command.append(key) }
                command.append(String(write.epoch))
                for op in part.ops { command.append(op) }
                return ClusterCommand(key: epochKey, command: command)
            }
            let fence = keys.slotFence(slot)
            command.append(redisScript.sha1)
            command.append(1 + part.keys.count)
            command.append(fence)
            for key in part.keys { command.append(key) }
            command.append("\(write.task)")
            command.append(String(write.epoch))
            for op in part.ops { command.append(op) }
            return ClusterCommand(key: Array(fence.utf8), command: command)
        }
    }

    /// Combines the replies of one write's parts: refused by an epoch if any
    /// part was (the highest current epoch reported, nil if a part found the
    /// epoch key missing), else failed if any part failed, else applied with
    /// every part's rejected keys.
    package static func combine(_ replies: [FencedWriteReply]) -> FencedWriteReply {
        var rejected: [FencedWriteReply.RejectedKey] = []
        var refused = false
        var current: Int64?
        var missing = false
        var failure: String?
        for reply in replies {
            switch reply {
            case .applied(let keys): rejected.append(contentsOf: keys)
            case .refusedByEpoch(let epoch):
                refused = true
                if let epoch { current = max(current ?? epoch, epoch) } else { missing = true }
            case .failed(let message): failure = failure ?? message
            }
        }
        if refused { return .refusedByEpoch(current: missing ? nil : current) }
        if let failure { return .failed(failure) }
        return .applied(rejected: rejected)
    }

    /// KEYS[1] = the slot's fence hash, KEYS[2...] = the keys written (declared,
    /// as a cluster requires; all in one slot). ARGV[1] = task, ARGV[2] = epoch,
    /// then operations encoded as in `FencedWrite.script` (H, Z, T, D, X), with
    /// the same reply contract (`FencedWriteReply`).
    package static let script = """
    local mark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
    local epoch = tonumber(ARGV[2])
    if mark > epoch then
      return redis.error_reply('FENCED epoch ' .. ARGV[2] .. ' of task ' .. ARGV[1] .. ' is stale, current is ' .. string.format('%d', mark))
    end
    if mark < epoch then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
    """ + "\n" + FencedWrite.operationsScript(firstArgument: 3)
}

/// For every slot, a short string whose CRC16 lands in it (a hash tag that
/// puts a key in a chosen slot). Built once: about 160,000 CRC16s of short
/// strings, a few milliseconds.
package enum SlotTags {
    package static func tag(for slot: Int) -> String { table[slot] }

    static let table: [String] = {
        var tags = [String?](repeating: nil, count: ClusterSlot.count)
        var missing = ClusterSlot.count
        var n = 0
        while missing > 0 {
            let text = String(n, radix: 36)
            let slot = ClusterSlot.of(Array(text.utf8))
            if tags[slot] == nil { tags[slot] = text; missing -= 1 }
            n += 1
        }
        return tags.map { $0 ?? "" }
    }()
}
