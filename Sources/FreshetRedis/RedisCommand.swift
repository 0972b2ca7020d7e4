/// One Redis command, held as its RESP encoding so that adding it to a
/// pipeline is a single copy.
///
/// Arguments are binary-safe byte strings: strings are sent as UTF-8, integers
/// and doubles in their decimal form, byte arrays unchanged (zero bytes
/// included). Build one with `init(_:_:)`, with `append`, or with the helpers
/// (`.hset`, `.zadd`, `.evalsha`, ...).
package struct RedisCommand: Sendable, Equatable, CustomStringConvertible {
    /// The arguments as RESP bulk strings (`$len\r\nbytes\r\n` each), without the `*count` header.
    private(set) var body: [UInt8]
    /// Number of arguments, the command name included.
    package private(set) var argumentCount: Int
    /// Size of the encoded arguments in bytes (without the `*count` header): what a pipeline copies.
    package var bodyByteCount: Int { body.count }

    /// A command with a name and no arguments yet; add them with `append`.
    package init(_ name: String) {
        body = []
        body.reserveCapacity(32 + name.utf8.count)
        argumentCount = 0
        append(name)
    }

    package init(_ name: String, _ arguments: String...) {
        self.init(name, arguments)
    }

    package init(_ name: String, _ arguments: [String]) {
        self.init(name)
        for argument in arguments { append(argument) }
    }

    /// A command from raw arguments, the name first (binary-safe).
    package init(arguments: [[UInt8]]) {
        body = []
        argumentCount = 0
        for argument in arguments { append(argument) }
    }

    /// A command from an encoded body (as `RedisPipeline.commands` finds it).
    init(body: [UInt8], argumentCount: Int) {
        self.body = body
        self.argumentCount = argumentCount
    }

    /// The key a Redis Cluster routes this command by: the first key of
    /// `EVAL`/`EVALSHA` (nil with no keys), nil for key-less commands
    /// (`INFO`, `PING`, `WAIT`, ...), else the first argument.
    package var routingKey: [UInt8]? {
        let arguments = self.arguments
        guard arguments.count >= 2 else { return nil }
        switch String(decoding: arguments[0], as: UTF8.self).uppercased() {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard arguments.count >= 4, let keys = Int(String(decoding: arguments[2], as: UTF8.self)), keys > 0 else { return nil }
            return arguments[3]
        case "INFO", "PING", "WAIT", "SCRIPT", "CLUSTER", "ASKING", "DBSIZE", "FLUSHALL", "FLUSHDB", "CONFIG", "SCAN", "KEYS":
            return nil
        default:
            return arguments[1]
        }
    }

    package mutating func append(_ argument: String) {
        var argument = argument
        argument.withUTF8 { append(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Appends one argument made of `prefix` then `suffix` (a key such as
    /// `user:<id>` without building the joined `String` first).
    package mutating func append(_ prefix: String, _ suffix: String) {
        var prefix = prefix, suffix = suffix
        prefix.withUTF8 { p in
            suffix.withUTF8 { s in
                appendHeader(length: p.count + s.count)
                body.append(contentsOf: p)
                body.append(contentsOf: s)
                body.append(13); body.append(10)
            }
        }
    }

    package mutating func append(_ argument: Substring) {
        append(String(argument))
    }

    /// Appends raw bytes unchanged (binary-safe).
    package mutating func append<Bytes: Collection>(_ argument: Bytes) where Bytes.Element == UInt8 {
        let done: Void? = argument.withContiguousStorageIfAvailable { append(bytes: UnsafeRawBufferPointer($0)) }
        if done == nil { Array(argument).withUnsafeBytes { append(bytes: $0) } }
    }

    /// Appends raw bytes unchanged (binary-safe), e.g. a float32 embedding blob.
    package mutating func append(bytes: UnsafeRawBufferPointer) {
        argumentCount += 1
        Self.appendBulk(bytes, to: &body)
    }

    package mutating func append(_ argument: Int) {
        append(Int64(argument))
    }

    package mutating func append(_ argument: Int64) {
        Self.withDecimal(argument) { append(bytes: $0) }
    }

    /// Appends a double in a form Redis parses exactly (shortest round-trip
    /// decimal; `inf`/`-inf` for infinities).
    package mutating func append(_ argument: Double) {
        append(argument.description)
    }

    /// The arguments, the name first, decoded back from the encoding (for logs and tests).
    package var arguments: [[UInt8]] { argumentSlices.map { Array($0) } }

    /// The arguments as views into the encoding (no copy of their bytes), the name first.
    package var argumentSlices: [ArraySlice<UInt8>] {
        withArgumentRanges(from: 0) { _, ranges in ranges.map { body[$0.content] } }
    }

    /// Where one argument sits in the encoding (`RedisCommand.withArgumentRanges`).
    package struct ArgumentRange: Sendable, Equatable {
        /// The whole bulk string, `$len\r\n` to the closing `\r\n`.
        package var encoded: Range<Int>
        /// Its bytes.
        package var content: Range<Int>
    }

    /// Calls `body` with the encoding and where each argument from index
    /// `first` on (0 is the name) sits in it: walks the encoding once and
    /// makes no copy or view of an argument (a transaction re-framing a
    /// fenced write's operations copies runs of encoded arguments at once).
    package func withArgumentRanges<R>(from first: Int,
                                       _ body: (UnsafeBufferPointer<UInt8>, [ArgumentRange]) throws -> R) rethrows -> R {
        try withArgumentReader(from: first) { bytes, reader in
            var ranges: [ArgumentRange] = []
            ranges.reserveCapacity(max(0, argumentCount - first))
            while let range = reader.next() { ranges.append(range) }
            return try body(bytes, ranges)
        }
    }

    /// The command name (first argument), upper-cased.
    package var name: String {
        guard let first = arguments.first else { return "" }
        return String(decoding: first, as: UTF8.self).uppercased()
    }

    /// The full RESP encoding (`*count\r\n` followed by the arguments).
    package var encoded: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(body.count + 16)
        Self.appendArrayHeader(count: argumentCount, to: &result)
        result.append(contentsOf: body)
        return result
    }

    /// The command for logs: arguments shown as text when valid UTF-8 and
    /// short, else as a byte count.
    package var description: String {
        arguments.map { bytes -> String in
            if bytes.count <= 64, let text = String(validating: bytes, as: UTF8.self) { return text }
            return "<\(bytes.count) bytes>"
        }.joined(separator: " ")
    }

    /// Appends the arguments `body` writes, in one reservation of `maxBytes`
    /// (which must bound what `body` writes: `RESPCursor.maxBytes(length:)`
    /// per argument). Same bytes as appending them one by one.
    package mutating func append(maxBytes: Int, _ write: (inout RESPCursor) -> Void) {
        let start = body.count
        // Zero-filled reservation (a memset), written in place, then cut to size.
        body.append(contentsOf: repeatElement(0, count: maxBytes))
        let (written, arguments) = body.withUnsafeMutableBytes { buffer -> (Int, Int) in
            guard let base = buffer.baseAddress else { return (0, 0) }
            var cursor = RESPCursor(base: base + start, capacity: maxBytes)
            write(&cursor)
            return (cursor.written, cursor.arguments)
        }
        body.removeLast(maxBytes - written)
        argumentCount += arguments
    }

    private mutating func appendHeader(length: Int) {
        argumentCount += 1
        Self.appendBulkHeader(length: length, to: &body)
    }

    /// `$<length>\r\n`: the head of a bulk string.
    static func appendBulkHeader(length: Int, to buffer: inout [UInt8]) {
        buffer.append(36) // "$"
        appendDecimal(length, to: &buffer)
        buffer.append(13); buffer.append(10)
    }

    /// One bulk string (an argument): header, bytes, CRLF.
    static func appendBulk(_ bytes: UnsafeRawBufferPointer, to buffer: inout [UInt8]) {
        appendBulkHeader(length: bytes.count, to: &buffer)
        buffer.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
        buffer.append(13); buffer.append(10)
    }

    /// Calls `body` with `value` in decimal ASCII (on the stack, no allocation).
    static func withDecimal<R>(_ value: Int64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &digits) { buffer in
            var magnitude = value.magnitude
            var start = buffer.count
            repeat {
                start -= 1
                buffer[start] = UInt8(truncatingIfNeeded: 48 + magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if value < 0 {
                start -= 1
                buffer[start] = 45 // "-"
            }
            return body(UnsafeRawBufferPointer(rebasing: buffer[start...]))
        }
    }

    static func appendArrayHeader(count: Int, to buffer: inout [UInt8]) {
        buffer.append(42) // "*"
        appendDecimal(count, to: &buffer)
        buffer.append(13); buffer.append(10)
    }

    static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        if value < 10 {
            buffer.append(UInt8(48 + value))
            return
        }
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            buffer.append(UInt8(48 + rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
}

// MARK: - Helpers for the commands Freshet uses

extension RedisCommand {
    /// `HSET key field value [field value ...]` with text values.
    package static func hset(_ key: String, _ fields: [(String, String)]) -> RedisCommand {
        var command = RedisCommand("HSET")
        command.append(key)
        for (field, value) in fields {
            command.append(field)
            command.append(value)
        }
        return command
    }

    /// `HSET key field value [field value ...]` with binary values (e.g. embedding blobs).
    package static func hset(_ key: String, _ fields: [(String, [UInt8])]) -> RedisCommand {
        var command = RedisCommand("HSET")
        command.append(key)
        for (field, value) in fields {
            command.append(field)
            command.append(value)
        }
        return command
    }

    /// `HGETALL key`.
    package static func hgetall(_ key: String) -> RedisCommand {
        RedisCommand("HGETALL", key)
    }

    /// `HGET key field`.
    package static func hget(_ key: String, _ field: String) -> RedisCommand {
        RedisCommand("HGET", key, field)
    }

    /// `ZADD key score member [score member ...]`.
    package static func zadd(_ key: String, _ members: [(score: Double, member: String)]) -> RedisCommand {
        var command = RedisCommand("ZADD")
        command.append(key)
        for (score, member) in members {
            command.append(score)
            command.append(member)
        }
        return command
    }

    /// `DEL key [key ...]`.
    package static func del(_ keys: String...) -> RedisCommand {
        RedisCommand("DEL", keys)
    }

    /// `DEL key [key ...]`.
    package static func del(_ keys: [String]) -> RedisCommand {
        RedisCommand("DEL", keys)
    }

    /// `SET key value` (text).
    package static func set(_ key: String, _ value: String) -> RedisCommand {
        RedisCommand("SET", key, value)
    }

    /// `SET key value` (binary).
    package static func set(_ key: String, _ value: [UInt8]) -> RedisCommand {
        var command = RedisCommand("SET")
        command.append(key)
        command.append(value)
        return command
    }

    /// `GET key`.
    package static func get(_ key: String) -> RedisCommand {
        RedisCommand("GET", key)
    }

    /// `EXPIRE key seconds`.
    package static func expire(_ key: String, seconds: Int) -> RedisCommand {
        var command = RedisCommand("EXPIRE")
        command.append(key)
        command.append(seconds)
        return command
    }

    /// `EVALSHA sha numkeys key... arg...` with text arguments.
    package static func evalsha(_ sha1: String, keys: [String], args: [String] = []) -> RedisCommand {
        var command = RedisCommand("EVALSHA")
        command.append(sha1)
        command.append(keys.count)
        for key in keys { command.append(key) }
        for arg in args { command.append(arg) }
        return command
    }

    /// `EVALSHA sha numkeys key... arg...` with binary arguments.
    package static func evalsha(_ sha1: String, keys: [String], binaryArgs args: [[UInt8]]) -> RedisCommand {
        var command = RedisCommand("EVALSHA")
        command.append(sha1)
        command.append(keys.count)
        for key in keys { command.append(key) }
        for arg in args { command.append(arg) }
        return command
    }

    /// `EVALSHA` for a script (see `RedisScript`).
    package static func evalsha(_ script: RedisScript, keys: [String], args: [String] = []) -> RedisCommand {
        evalsha(script.sha1, keys: keys, args: args)
    }

    /// `EVALSHA` for a script with binary arguments.
    package static func evalsha(_ script: RedisScript, keys: [String], binaryArgs args: [[UInt8]]) -> RedisCommand {
        evalsha(script.sha1, keys: keys, binaryArgs: args)
    }

    /// `SCRIPT LOAD source`.
    package static func scriptLoad(_ script: RedisScript) -> RedisCommand {
        RedisCommand("SCRIPT", "LOAD", script.source)
    }

    /// `MULTI` (start a transaction; replies inside are `QUEUED`, `EXEC` returns them as an array).
    package static var multi: RedisCommand { RedisCommand("MULTI") }

    /// `EXEC`.
    package static var exec: RedisCommand { RedisCommand("EXEC") }

    /// `PING`.
    package static var ping: RedisCommand { RedisCommand("PING") }
}
