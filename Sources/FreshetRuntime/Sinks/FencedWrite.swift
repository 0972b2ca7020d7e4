import FreshetRedis

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
package struct FencedWrite: Sendable {
    package let task: TaskId
    package let epochKey: String
    package let epoch: Int64
    /// True for a checkpoint (state and offsets); false for features. A
    /// checkpoint with a refused key did not land, so its offsets must not be committed.
    package var isCheckpoint = false
    /// The whole `EVALSHA sha 1 epochKey epoch ops...` command, built in one
    /// buffer as operations are added: a flush writes thousands of fields and
    /// one array per field made allocation the processor's main cost.
    package private(set) var command: RedisCommand
    package private(set) var operationCount = 0
    /// Encoded size of the operations (for checkpoint size metrics).
    package var byteCount: Int { command.bodyByteCount }

    package init(task: TaskId, epochKey: String, epoch: Int64) {
        self.task = task
        self.epochKey = epochKey
        self.epoch = epoch
        var command = RedisCommand("EVALSHA")
        command.append(Self.redisScript.sha1)
        command.append("1")
        command.append(epochKey)
        command.append(String(epoch))
        self.command = command
    }

    package var isEmpty: Bool { operationCount == 0 }

    /// The operations as separate arguments (tests and diagnostics; not the hot path).
    package var operations: [[UInt8]] { Array(command.arguments.dropFirst(5)) }

    /// HSET key f1 v1 f2 v2 ... (split by the script into chunks Lua can unpack).
    package mutating func hashSet(_ key: String, _ fields: [(String, [UInt8])]) {
        appendHashSet(key.utf8, fields.count) { command in
            for (field, value) in fields {
                command.append(field)
                command.append(value)
            }
        }
    }

    package mutating func hashSet(_ key: String, _ fields: [(String, String)]) {
        appendHashSet(key.utf8, fields.count) { command in
            for (field, value) in fields {
                command.append(field)
                command.append(value)
            }
        }
    }

    /// HSET with a binary key and binary field names (Feast rows: keys hold NUL bytes).
    package mutating func hashSet(rawKey key: [UInt8], _ fields: [([UInt8], [UInt8])]) {
        appendHashSet(key, fields.count) { command in
            for (field, value) in fields {
                command.append(field)
                command.append(value)
            }
        }
    }

    /// Starts `HSET key` with `fieldCount` fields, which the caller then adds
    /// with exactly `fieldCount` calls of `appendHashField` (a checkpoint
    /// encodes each entry into one reused buffer and copies it here, no array
    /// of fields). Nothing is added when `fieldCount` is 0.
    package mutating func beginHashSet(_ key: String, fieldCount: Int) {
        guard fieldCount > 0 else { return }
        command.append("H")
        command.append(key)
        command.append(fieldCount)
        operationCount += 1
    }

    /// One field of the `HSET` opened by `beginHashSet`.
    package mutating func appendHashField(_ field: String, _ value: [UInt8]) {
        command.append(field)
        // Borrowed bytes: the generic `append` is not specialised across modules.
        value.withUnsafeBytes { command.append(bytes: $0) }
    }

    /// One field of the `HSET` opened by `beginHashSet`, its value copied
    /// from `bytes` (e.g. a float32 vector in place: no array per value).
    package mutating func appendHashField(_ field: String, bytes: UnsafeRawBufferPointer) {
        command.append(field)
        command.append(bytes: bytes)
    }

    /// `beginHashSet` for the key `prefix + id` (`user:<id>`, `item:<id>`),
    /// written into the command without building the key `String`.
    package mutating func beginHashSet(prefix: String, id: String, fieldCount: Int) {
        guard fieldCount > 0 else { return }
        command.append("H")
        command.append(prefix, id)
        command.append(fieldCount)
        operationCount += 1
    }

    /// A field with an integer value, in decimal, digits written straight into the command.
    package mutating func appendHashField(_ field: String, _ value: Int64) {
        command.append(field)
        command.append(value)
    }

    /// One operation written in place in one reservation: `write` adds its
    /// arguments, the operation's code first (`"H"`, key, field count,
    /// fields for an `HSET`), within `maxBytes` (`RESPCursor.maxBytes(length:)`
    /// per argument). The bytes equal those of the same arguments appended
    /// one by one (`beginHashSet` + `appendHashField`); the flush renders
    /// each changed key this way (one call per key instead of one per argument).
    package mutating func appendOperation(maxBytes: Int, _ write: (inout RESPCursor) -> Void) {
        command.append(maxBytes: maxBytes, write)
        operationCount += 1
    }

    /// HDEL with a binary key and field name.
    package mutating func hashDelete(rawKey key: [UInt8], field: [UInt8]) {
        command.append("X")
        command.append(key)
        command.append(field)
        operationCount += 1
    }

    private mutating func appendHashSet<Key: Collection>(_ key: Key, _ count: Int, _ appendFields: (inout RedisCommand) -> Void)
    where Key.Element == UInt8 {
        guard count > 0 else { return }
        command.append("H")
        command.append(key)
        command.append(count)
        appendFields(&command)
        operationCount += 1
    }

    /// ZADD key score member
    package mutating func sortedSetAdd(_ key: String, score: Double, member: String) {
        // `description` is `format`'s text without an interpolation buffer.
        command.append("Z")
        command.append(key)
        command.append(score.description)
        command.append(member)
        operationCount += 1
    }

    /// Keep only the `keep` highest-scored members of a sorted set.
    package mutating func sortedSetTrim(_ key: String, keep: Int) {
        command.append("T")
        command.append(key)
        command.append(keep)
        operationCount += 1
    }

    /// DEL key
    package mutating func delete(_ key: String) {
        command.append("D")
        command.append(key)
        operationCount += 1
    }

    /// HDEL key field
    package mutating func hashDelete(_ key: String, field: String) {
        command.append("X")
        command.append(key)
        command.append(field)
        operationCount += 1
    }

    /// Shortest text that reads back as the same Double (Swift's description is exact round-trip).
    static func format(_ value: Double) -> String { "\(value)" }

    package static let redisScript = RedisScript(source: script)

    /// KEYS[1] = epoch key, ARGV[1] = epoch, then the operations.
    ///
    /// Replies (parsed by `FencedWriteReply`):
    /// - `FENCED epoch E is stale, current is C` (C is `missing` when the epoch
    ///   key is gone): nothing was written.
    /// - a transient refusal (`OOM ...`, `READONLY ...`, ...) raised by the first
    ///   operation that met it: the caller retries the whole write (every
    ///   operation is an absolute value, so a partly applied write converges).
    /// - otherwise an array: the number of operations applied, then a key and
    ///   error message for each operation Redis refused (e.g. `WRONGTYPE`): one
    ///   bad key never takes the rest of the task's batch with it.
    package static let script = """
    local current = redis.call('GET', KEYS[1])
    if current ~= ARGV[1] then
      return redis.error_reply('FENCED epoch ' .. ARGV[1] .. ' is stale, current is ' .. (current or 'missing'))
    end
    """ + "\n" + operationsScript(firstArgument: 2)

    /// The part of the script after the epoch check: applies the operations
    /// from `ARGV[firstArgument]` on (shared with `ClusterFencing.script`).
    static func operationsScript(firstArgument: Int) -> String {
        """
    local transient = {OOM = true, READONLY = true, LOADING = true, BUSY = true, TRYAGAIN = true,
      MASTERDOWN = true, CLUSTERDOWN = true, MISCONF = true, NOREPLICAS = true}
    local result = {0}
    local failed = nil
    local function run(...)
      local reply = redis.pcall(...)
      if type(reply) == 'table' and reply.err then
        failed = reply.err
        return false
      end
      return true
    end
    local function refuse(key)
      local prefix = string.match(failed, '^(%u+)') or 'ERR'
      if transient[prefix] then return true end
      table.insert(result, key)
      table.insert(result, failed)
      return false
    end
    local i = \(firstArgument)
    local n = #ARGV
    while i <= n do
      local op = ARGV[i]
      local key = ARGV[i + 1]
      local ok = true
      if op == 'H' then
        local count = tonumber(ARGV[i + 2])
        local first = i + 3
        local last = first + 2 * count - 1
        while ok and first <= last do
          local stop = math.min(first + 999, last)
          ok = run('HSET', key, unpack(ARGV, first, stop))
          first = stop + 1
        end
        i = last + 1
      elseif op == 'Z' then
        ok = run('ZADD', key, ARGV[i + 2], ARGV[i + 3])
        i = i + 4
      elseif op == 'T' then
        ok = run('ZREMRANGEBYRANK', key, 0, -(tonumber(ARGV[i + 2]) + 1))
        i = i + 3
      elseif op == 'D' then
        ok = run('DEL', key)
        i = i + 2
      elseif op == 'X' then
        ok = run('HDEL', key, ARGV[i + 2])
        i = i + 3
      else
        return redis.error_reply('freshet: unknown operation ' .. tostring(op))
      end
      if ok then
        result[1] = result[1] + 1
      elseif refuse(key) then
        return redis.error_reply(failed)
      end
    end
    return result
    """
    }
}
