extension RedisCommand {
    /// Reads a command's encoded arguments one at a time, in order, without
    /// copying them or collecting their ranges (a transaction re-framing a
    /// fenced write's operations walks thousands of arguments per flush; an
    /// array of ranges per write was a tenth of the Redis writer thread).
    package struct ArgumentReader {
        /// The command's encoded arguments (`RedisCommand.withArgumentReader`).
        package let bytes: UnsafeBufferPointer<UInt8>
        /// Offset in `bytes` of the next argument's `$`.
        package private(set) var position = 0
        /// Arguments read or skipped so far (the name is argument 0).
        package private(set) var count = 0

        /// The next argument, nil after the last (or at a truncated one).
        package mutating func next() -> ArgumentRange? {
            guard position < bytes.count else { return nil }
            let start = position
            var index = position + 1
            var length = 0
            while index < bytes.count && bytes[index] != 13 {
                length = length &* 10 &+ Int(bytes[index] &- 48)
                index += 1
            }
            index += 2
            let end = index + length + 2
            guard length >= 0, end <= bytes.count else { return nil }
            position = end
            count += 1
            return ArgumentRange(encoded: start..<end, content: index..<(index + length))
        }

        /// Skips `arguments` arguments; false when fewer were left.
        package mutating func skip(_ arguments: Int) -> Bool {
            var left = arguments
            while left > 0 {
                guard next() != nil else { return false }
                left -= 1
            }
            return true
        }
    }

    /// Calls `body` with the encoding and a reader standing at argument
    /// `first` (0 is the name). The reader is valid only during the call.
    package func withArgumentReader<R>(from first: Int,
                                       _ body: (UnsafeBufferPointer<UInt8>, inout ArgumentReader) throws -> R) rethrows -> R {
        try self.body.withUnsafeBufferPointer { bytes in
            var reader = ArgumentReader(bytes: bytes)
            _ = reader.skip(first)
            return try body(bytes, &reader)
        }
    }
}
