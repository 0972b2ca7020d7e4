/// A group of Redis writes that one task makes atomically, guarded by the
/// task's fencing epoch.
///
/// Every write a task makes (features and checkpoints alike) runs inside one
/// Lua script that first compares the task's epoch with the current epoch of
/// the task in Redis. A new owner bumps the epoch when it takes the task over,
/// so a zombie (a process that lost the partition without noticing, e.g. it
/// was stopped past the session timeout) has its writes refused with a
/// `FENCED` error instead of overwriting the new owner's features or
/// checkpoint. Values are absolute (never increments), so a retried or
/// replayed write converges to the same result.
public struct FencedWrite: Sendable {
    public let task: TaskId
    public let epochKey: String
    public let epoch: Int64
    /// Script arguments after the epoch: a flat list of operations (see `script`).
    public private(set) var operations: [[UInt8]] = []
    public private(set) var operationCount = 0

    public init(task: TaskId, epochKey: String, epoch: Int64) {
        self.task = task
        self.epochKey = epochKey
        self.epoch = epoch
    }

    public var isEmpty: Bool { operationCount == 0 }

    /// HSET key f1 v1 f2 v2 ... (split by the script into chunks Lua can unpack).
    public mutating func hashSet(_ key: String, _ fields: [(String, [UInt8])]) {
        guard !fields.isEmpty else { return }
        operations.append(Self.h)
        operations.append(Array(key.utf8))
        operations.append(Array(String(fields.count).utf8))
        for (field, value) in fields {
            operations.append(Array(field.utf8))
            operations.append(value)
        }
        operationCount += 1
    }

    public mutating func hashSet(_ key: String, _ fields: [(String, String)]) {
        hashSet(key, fields.map { ($0.0, Array($0.1.utf8)) })
    }

    /// ZADD key score member
    public mutating func sortedSetAdd(_ key: String, score: Double, member: String) {
        operations.append(Self.z)
        operations.append(Array(key.utf8))
        operations.append(Array(Self.format(score).utf8))
        operations.append(Array(member.utf8))
        operationCount += 1
    }

    /// Keep only the `keep` highest-scored members of a sorted set.
    public mutating func sortedSetTrim(_ key: String, keep: Int) {
        operations.append(Self.t)
        operations.append(Array(key.utf8))
        operations.append(Array(String(keep).utf8))
        operationCount += 1
    }

    /// DEL key
    public mutating func delete(_ key: String) {
        operations.append(Self.d)
        operations.append(Array(key.utf8))
        operationCount += 1
    }

    /// HDEL key field
    public mutating func hashDelete(_ key: String, field: String) {
        operations.append(Self.x)
        operations.append(Array(key.utf8))
        operations.append(Array(field.utf8))
        operationCount += 1
    }

    /// Shortest text that reads back as the same Double (Swift's description is exact round-trip).
    static func format(_ value: Double) -> String { "\(value)" }

    private static let h: [UInt8] = Array("H".utf8)
    private static let z: [UInt8] = Array("Z".utf8)
    private static let t: [UInt8] = Array("T".utf8)
    private static let d: [UInt8] = Array("D".utf8)
    private static let x: [UInt8] = Array("X".utf8)

    /// KEYS[1] = epoch key, ARGV[1] = epoch, then the operations.
    /// Redis runs a script atomically, so either all of a task's batch lands or none.
    public static let script = """
    local current = redis.call('GET', KEYS[1])
    if current ~= ARGV[1] then
      return redis.error_reply('FENCED epoch ' .. ARGV[1] .. ' is stale, current is ' .. tostring(current))
    end
    local i = 2
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
