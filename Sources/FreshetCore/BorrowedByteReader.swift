/// Reads the `ByteWriter` format in place from borrowed bytes: no copy of the
/// input, no generic code on the hot path. The bytes must outlive the reader
/// (use it inside `withUnsafeBytes`). `ByteReader` is the owning variant and
/// reads through this one.
///
/// Every read names its `context` so a failure says which field was
/// truncated or invalid. Strings are validated strictly (RFC 3629, as
/// `String(validating:)`) with the project's word-at-a-time validator, then
/// built with the standard library's specialised UTF-8 initialiser.
public struct BorrowedByteReader {
    public let bytes: UnsafeRawBufferPointer
    public var position: Int

    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    @inlinable public var isAtEnd: Bool { position >= bytes.count }
    @inlinable public var remaining: Int { bytes.count &- position }

    @inlinable
    public mutating func readByte(_ context: @autoclosure () -> String) throws(CodecError) -> UInt8 {
        guard position < bytes.count else { throw CodecError(.truncated, context()) }
        defer { position &+= 1 }
        return bytes[position]
    }

    @inlinable
    public mutating func readVarint(_ context: @autoclosure () -> String) throws(CodecError) -> UInt64 {
        // One-byte values (most lengths, flags, small numbers) take the short path.
        if position < bytes.count {
            let b = bytes[position]
            if b < 0x80 {
                position &+= 1
                return UInt64(b)
            }
        }
        return try readLongVarint(context())
    }

    @usableFromInline
    mutating func readLongVarint(_ context: String) throws(CodecError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else { throw CodecError(.truncated, context) }
            let b = bytes[position]
            position &+= 1
            // The 10th byte may carry only the top bit of a 64-bit value.
            if shift == 63 && b > 1 { throw CodecError(.invalidVarint, context) }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw CodecError(.invalidVarint, context) }
        }
    }

    @inlinable
    public mutating func readZigzag(_ context: @autoclosure () -> String) throws(CodecError) -> Int64 {
        let u = try readVarint(context())
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    public mutating func readInt64(_ context: @autoclosure () -> String) throws(CodecError) -> Int64 {
        guard remaining >= 8 else { throw CodecError(.truncated, context()) }
        let v = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
        position &+= 8
        return Int64(bitPattern: v)
    }

    /// A length-prefixed byte run, borrowed (valid as long as `bytes`).
    @inlinable
    public mutating func readBytes(_ context: @autoclosure () -> String) throws(CodecError) -> UnsafeRawBufferPointer {
        let n = try readVarint(context())
        guard n <= UInt64(remaining) else { throw CodecError(.truncated, context()) }
        let start = position
        position &+= Int(n)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<position])
    }

    /// A length-prefixed byte run that must be valid UTF-8, borrowed.
    @inlinable
    public mutating func readUTF8(_ context: @autoclosure () -> String) throws(CodecError) -> UnsafeRawBufferPointer {
        let run = try readBytes(context())
        guard UTF8Validation.isValid(run) else { throw CodecError(.invalidUTF8, context()) }
        return run
    }

    @inlinable
    public mutating func readString(_ context: @autoclosure () -> String) throws(CodecError) -> String {
        Self.string(validUTF8: try readUTF8(context()))
    }

    /// Skips a length-prefixed string, still checking that it is valid UTF-8
    /// (a record with a broken string stays undecodable whether or not the
    /// reader needs the field).
    @inlinable
    public mutating func skipString(_ context: @autoclosure () -> String) throws(CodecError) {
        _ = try readUTF8(context())
    }

    @inlinable
    public mutating func readOptionalZigzag(_ context: @autoclosure () -> String) throws(CodecError) -> Int64? {
        switch try readByte(context()) {
        case 0: return nil
        case 1: return try readZigzag(context())
        default: throw CodecError(.invalidValue, "\(context()) presence flag")
        }
    }

    @inlinable
    public mutating func readOptionalString(_ context: @autoclosure () -> String) throws(CodecError) -> String? {
        switch try readByte(context()) {
        case 0: return nil
        case 1: return try readString(context())
        default: throw CodecError(.invalidValue, "\(context()) presence flag")
        }
    }

    @inlinable
    public mutating func skipOptionalString(_ context: @autoclosure () -> String) throws(CodecError) {
        switch try readByte(context()) {
        case 0: return
        case 1: try skipString(context())
        default: throw CodecError(.invalidValue, "\(context()) presence flag")
        }
    }

    /// Fails unless every byte was consumed.
    @inlinable
    public func expectEnd(_ context: @autoclosure () -> String) throws(CodecError) {
        if !isAtEnd { throw CodecError(.trailingBytes, "\(remaining) unread bytes after \(context())") }
    }

    /// A `String` of bytes already checked to be valid UTF-8 (the standard
    /// library's contiguous fast path: an ASCII check and a copy).
    @inlinable
    public static func string(validUTF8 run: UnsafeRawBufferPointer) -> String {
        guard let base = run.baseAddress, run.count > 0 else { return "" }
        return String(decoding: UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: run.count),
                      as: UTF8.self)
    }
}
