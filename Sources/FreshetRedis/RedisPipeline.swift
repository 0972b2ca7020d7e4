/// A batch of commands sent in one go and answered in order.
///
/// The pipeline keeps all commands in one RESP buffer, so `add` is a copy and
/// sending is one write per chunk. Reuse a pipeline with
/// `removeAll(keepingCapacity: true)` to avoid reallocating.
///
/// A pipeline is not a transaction: other clients' commands may interleave.
/// Wrap commands in `.multi` / `.exec` when atomicity is needed.
package struct RedisPipeline: Sendable {
    /// RESP encoding of all commands, back to back.
    private(set) var buffer: [UInt8] = []
    /// End offset in `buffer` of each command.
    private(set) var ends: [Int] = []

    package init() {}

    /// A pipeline with room for about `bytes` of encoded commands.
    package init(reservingCapacity bytes: Int) {
        buffer.reserveCapacity(bytes)
    }

    package init(_ commands: [RedisCommand]) {
        for command in commands { add(command) }
    }

    /// Number of commands (and of replies `execute` returns).
    package var count: Int { ends.count }
    package var isEmpty: Bool { ends.isEmpty }
    /// Size of the encoded commands in bytes.
    package var byteCount: Int { buffer.count }

    package mutating func add(_ command: RedisCommand) {
        RedisCommand.appendArrayHeader(count: command.argumentCount, to: &buffer)
        buffer.append(contentsOf: command.body)
        ends.append(buffer.count)
    }

    /// Starts a command of `argumentCount` arguments (the name included),
    /// which the caller then appends with exactly that many arguments through
    /// `appendArgument` and `appendEncodedArguments`, then `endCommand()`.
    package mutating func beginCommand(argumentCount: Int) {
        RedisCommand.appendArrayHeader(count: argumentCount, to: &buffer)
    }

    /// One argument of the command begun by `beginCommand`.
    package mutating func appendArgument(_ argument: StaticString) {
        appendBulk(UnsafeBufferPointer(start: argument.utf8Start, count: argument.utf8CodeUnitCount))
    }

    /// One argument of the command begun by `beginCommand`.
    package mutating func appendArgument(_ argument: String) {
        var argument = argument
        argument.withUTF8 { appendBulk($0) }
    }

    /// One argument of the command begun by `beginCommand`: `value` in decimal.
    package mutating func appendArgument(_ value: Int) {
        RedisCommand.withDecimal(Int64(value)) { RedisCommand.appendBulk($0, to: &buffer) }
    }

    /// Arguments already encoded as RESP bulk strings, back to back (e.g. a
    /// run of another command's encoding, `RedisCommand.withArgumentRanges`).
    package mutating func appendEncodedArguments(_ encoded: Slice<UnsafeBufferPointer<UInt8>>) {
        buffer.append(contentsOf: encoded)
    }

    /// Ends the command begun by `beginCommand`.
    package mutating func endCommand() {
        ends.append(buffer.count)
    }

    private mutating func appendBulk(_ bytes: UnsafeBufferPointer<UInt8>) {
        RedisCommand.appendBulk(UnsafeRawBufferPointer(bytes), to: &buffer)
    }

    /// Keeps the first `count` commands and drops the rest (and any command
    /// begun after them and not ended).
    package mutating func truncate(toCount count: Int) {
        let end = count == 0 ? 0 : ends[count - 1]
        buffer.removeSubrange(end...)
        ends.removeSubrange(count...)
    }

    /// Appends every command of `other`, in order.
    package mutating func add(contentsOf other: RedisPipeline) {
        let offset = buffer.count
        buffer.append(contentsOf: other.buffer)
        ends.append(contentsOf: other.ends.lazy.map { $0 + offset })
    }

    package mutating func add(contentsOf commands: some Sequence<RedisCommand>) {
        for command in commands { add(command) }
    }

    package mutating func removeAll(keepingCapacity: Bool = true) {
        buffer.removeAll(keepingCapacity: keepingCapacity)
        ends.removeAll(keepingCapacity: keepingCapacity)
    }

    /// The commands, decoded back from the buffer (a cluster routes each by its key).
    package var commands: [RedisCommand] {
        var result: [RedisCommand] = []
        result.reserveCapacity(ends.count)
        var start = 0
        for end in ends {
            // "*" count "\r\n" then the body.
            var index = start + 1
            var count = 0
            while buffer[index] != 13 {
                count = count * 10 + Int(buffer[index] - 48)
                index += 1
            }
            index += 2
            result.append(RedisCommand(body: Array(buffer[index..<end]), argumentCount: count))
            start = end
        }
        return result
    }

    /// Byte range of the commands `commands` in `buffer`.
    func byteRange(of commands: Range<Int>) -> Range<Int> {
        let start = commands.lowerBound == 0 ? 0 : ends[commands.lowerBound - 1]
        let end = commands.isEmpty ? start : ends[commands.upperBound - 1]
        return start..<end
    }
}
