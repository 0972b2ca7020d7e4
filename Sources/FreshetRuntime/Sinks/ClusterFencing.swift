import FreshetRedis

/// Fenced writes on a Redis Cluster, where one script may only touch keys of
/// one slot (docs/OPERATIONS.md "Redis Cluster: fencing and checkpoints").
///
/// A task's `FencedWrite` is split by slot; each part runs as one script on
/// the slot's master with every key declared. Each slot has a fence hash,
/// `freshet:<group>:fence:{<tag>}` (the tag chosen so the hash lives in that
/// slot), holding per task the highest epoch that wrote there:
/// - a write whose epoch is below the slot's mark is refused (`FENCED`);
/// - a write at a higher epoch raises the mark, then applies its operations.
/// The mark in the slot of the task's own tag is the task's authoritative epoch:
/// taking a task over is `HINCRBY` there (`takeOverCommand`), so the task's
/// checkpoint keys (tagged by task, same slot) refuse a zombie at once. Other
/// slots refuse it from the new owner's first write there on; before that, a
/// zombie can only write keys it changed after its last accepted checkpoint,
/// which the new owner rewrites while replaying from that checkpoint.
/// Atomicity is per slot: a flush is no longer all-or-nothing across slots,
/// which is harmless because the checkpoint follows the acknowledged flush and
/// every value is absolute.
public enum ClusterFencing {
    /// The fence hash of `slot` for consumer group `group`.
    public static func fenceKey(group: String, slot: Int) -> String {
        "freshet:\(group):fence:{\(SlotTags.tag(for: slot))}"
    }

    /// The task's own tag: its checkpoint keys and its authoritative epoch share its slot.
    public static func taskTag(group: String, task: TaskId) -> String { "{freshet:\(group):\(task)}" }

    /// Checkpoint keys of a task in a cluster (hash-tagged by task).
    public static func checkpointKey(group: String, task: TaskId, part: String) -> String {
        "\(taskTag(group: group, task: task)):ckpt:\(part)"
    }

    /// `HINCRBY fence task 1` in the task's slot: the new owner's epoch.
    public static func takeOverCommand(group: String, task: TaskId) -> ClusterCommand {
        let slot = ClusterSlot.of(Array(taskTag(group: group, task: task).utf8))
        let key = fenceKey(group: group, slot: slot)
        return ClusterCommand(key: key, command: RedisCommand("HINCRBY", key, "\(task)", "1"))
    }

    public static let redisScript = RedisScript(source: script)

    /// One script call per slot that `write` touches, in the order of each slot's first operation.
    /// Throws when the write's operations cannot be parsed (a bug, not an input).
    public static func commands(for write: FencedWrite, group: String) throws(RedisError) -> [ClusterCommand] {
        var bySlot: [Int: (keys: [[UInt8]], ops: [[UInt8]])] = [:]
        var order: [Int] = []
        let ops = write.operations
        var i = 0
        func fail() -> RedisError {
            RedisError(kind: .invalidArgument, message: "malformed operations at \(i)", context: "ClusterFencing(\(write.task))")
        }
        while i < ops.count {
            let width: Int
            switch String(decoding: ops[i], as: UTF8.self) {
            case "H":
                guard i + 2 < ops.count, let count = Int(String(decoding: ops[i + 2], as: UTF8.self)) else { throw fail() }
                width = 3 + 2 * count
            case "Z": width = 4
            case "T": width = 3
            case "D": width = 2
            case "X": width = 3
            default: throw fail()
            }
            guard i + width <= ops.count else { throw fail() }
            let key = ops[i + 1]
            let slot = ClusterSlot.of(key)
            if bySlot[slot] == nil { order.append(slot); bySlot[slot] = ([], []) }
            if !(bySlot[slot]?.keys.contains(key) ?? false) { bySlot[slot]?.keys.append(key) }
            bySlot[slot]?.ops.append(contentsOf: ops[i..<(i + width)])
            i += width
        }
        return order.map { slot in
            let part = bySlot[slot] ?? ([], [])
            let fence = fenceKey(group: group, slot: slot)
            var command = RedisCommand("EVALSHA")
            command.append(redisScript.sha1)
            command.append(1 + part.keys.count)
            command.append(fence)
            for key in part.keys { command.append(key) }
            command.append("\(write.task)")
            command.append(write.epoch)
            for op in part.ops { command.append(op) }
            return ClusterCommand(key: Array(fence.utf8), command: command)
        }
    }

    /// KEYS[1] = the slot's fence hash, KEYS[2...] = the keys written (declared,
    /// as a cluster requires; all in one slot). ARGV[1] = task, ARGV[2] = epoch,
    /// then operations encoded as in `FencedWrite.script` (H, Z, T, D, X).
    public static let script = """
    local mark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
    local epoch = tonumber(ARGV[2])
    if mark > epoch then
      return redis.error_reply('FENCED epoch ' .. ARGV[2] .. ' of task ' .. ARGV[1] .. ' is stale, current is ' .. tostring(mark))
    end
    if mark < epoch then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
    local i = 3
    local n = #ARGV
    local applied = 0
    while i <= n do
      local op = ARGV[i]
      if op == 'H' then
        local key = ARGV[i + 1]
        local count = tonumber(ARGV[i + 2])
        local first = i + 3
        local last = first + 2 * count - 1
        while first <= last do
          local stop = math.min(first + 999, last)
          redis.call('HSET', key, unpack(ARGV, first, stop))
          first = stop + 1
        end
        i = last + 1
      elseif op == 'Z' then
        redis.call('ZADD', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
        i = i + 4
      elseif op == 'T' then
        redis.call('ZREMRANGEBYRANK', ARGV[i + 1], 0, -(tonumber(ARGV[i + 2]) + 1))
        i = i + 3
      elseif op == 'D' then
        redis.call('DEL', ARGV[i + 1])
        i = i + 2
      elseif op == 'X' then
        redis.call('HDEL', ARGV[i + 1], ARGV[i + 2])
        i = i + 3
      else
        return redis.error_reply('freshet: unknown operation ' .. tostring(op))
      end
      applied = applied + 1
    end
    return applied
    """
}

/// For every slot, a short string whose CRC16 lands in it (a hash tag that
/// puts a key in a chosen slot). Built once: about 160,000 CRC16s of short
/// decimal strings, a few milliseconds.
public enum SlotTags {
    public static func tag(for slot: Int) -> String { table[slot] }

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
