/// Reads what `ByteWriter` wrote. Every read names its `context` so a failure
/// says which field was truncated or invalid.
package struct ByteReader: Sendable {
    package let bytes: [UInt8]
    package private(set) var position: Int = 0

    package init(_ bytes: some Collection<UInt8>) { self.bytes = Array(bytes) }

    /// Shares the array's storage (no copy, no generic code).
    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package init(_ buffer: UnsafeRawBufferPointer) { self.bytes = Array(buffer) }

    package var isAtEnd: Bool { position >= bytes.count }
    package var remaining: Int { bytes.count - position }

    /// Runs one read of the borrowed reader at `position` and moves past what it read.
    @inline(__always)
    private mutating func borrowed<T>(_ read: (inout BorrowedByteReader) throws(CodecError) -> T) throws(CodecError) -> T {
        let start = position
        let result: Result<(T, Int), CodecError> = bytes.withUnsafeBytes { buf in
            var r = BorrowedByteReader(buf, position: start)
            do throws(CodecError) {
                let value = try read(&r)
                return .success((value, r.position))
            } catch {
                return .failure(error)
            }
        }
        let (value, end) = try result.get()
        position = end
        return value
    }

    package mutating func readByte(_ context: String) throws(CodecError) -> UInt8 {
        guard position < bytes.count else { throw CodecError(.truncated, context) }
        defer { position += 1 }
        return bytes[position]
    }

    package mutating func readVarint(_ context: String) throws(CodecError) -> UInt64 {
        try borrowed { (r) throws(CodecError) in try r.readVarint(context) }
    }

    package mutating func readZigzag(_ context: String) throws(CodecError) -> Int64 {
        try borrowed { (r) throws(CodecError) in try r.readZigzag(context) }
    }

    package mutating func readInt64(_ context: String) throws(CodecError) -> Int64 {
        try borrowed { (r) throws(CodecError) in try r.readInt64(context) }
    }

    package mutating func readDouble(_ context: String) throws(CodecError) -> Double {
        Double(bitPattern: UInt64(bitPattern: try readInt64(context)))
    }

    /// A length-prefixed byte run; the length is checked before allocating.
    package mutating func readBytes(_ context: String) throws(CodecError) -> ArraySlice<UInt8> {
        let n = try readVarint(context)
        guard n <= UInt64(remaining) else { throw CodecError(.truncated, context) }
        return try readBytes(count: Int(n), context)
    }

    /// The next `count` bytes (a fixed-size field, no length prefix).
    package mutating func readBytes(count: Int, _ context: String) throws(CodecError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw CodecError(.truncated, context) }
        let start = position
        position += count
        return bytes[start..<position]
    }

    package mutating func readString(_ context: String) throws(CodecError) -> String {
        try borrowed { (r) throws(CodecError) in try r.readString(context) }
    }

    package mutating func readOptionalZigzag(_ context: String) throws(CodecError) -> Int64? {
        try borrowed { (r) throws(CodecError) in try r.readOptionalZigzag(context) }
    }

    package mutating func readOptionalString(_ context: String) throws(CodecError) -> String? {
        try borrowed { (r) throws(CodecError) in try r.readOptionalString(context) }
    }

    /// Fails unless every byte was consumed.
    package func expectEnd(_ context: String) throws(CodecError) {
        if !isAtEnd { throw CodecError(.trailingBytes, "\(remaining) unread bytes after \(context)") }
    }
}
