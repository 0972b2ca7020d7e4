/// Reads what `ByteWriter` wrote. Every read names its `context` so a failure
/// says which field was truncated or invalid.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var position: Int = 0

    public init(_ bytes: some Collection<UInt8>) { self.bytes = Array(bytes) }

    public init(_ buffer: UnsafeRawBufferPointer) { self.bytes = Array(buffer) }

    public var isAtEnd: Bool { position >= bytes.count }
    public var remaining: Int { bytes.count - position }

    public mutating func readByte(_ context: String) throws(CodecError) -> UInt8 {
        guard position < bytes.count else { throw CodecError(.truncated, context) }
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func readVarint(_ context: String) throws(CodecError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else { throw CodecError(.truncated, context) }
            let b = bytes[position]
            position += 1
            // The 10th byte may carry only the top bit of a 64-bit value.
            if shift == 63 && b > 1 { throw CodecError(.invalidVarint, context) }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw CodecError(.invalidVarint, context) }
        }
    }

    public mutating func readZigzag(_ context: String) throws(CodecError) -> Int64 {
        let u = try readVarint(context)
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    public mutating func readInt64(_ context: String) throws(CodecError) -> Int64 {
        guard remaining >= 8 else { throw CodecError(.truncated, context) }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += 8
        return Int64(bitPattern: v)
    }

    public mutating func readDouble(_ context: String) throws(CodecError) -> Double {
        Double(bitPattern: UInt64(bitPattern: try readInt64(context)))
    }

    /// A length-prefixed byte run; the length is checked before allocating.
    public mutating func readBytes(_ context: String) throws(CodecError) -> ArraySlice<UInt8> {
        let n = try readVarint(context)
        guard n <= UInt64(remaining) else { throw CodecError(.truncated, context) }
        let start = position
        position += Int(n)
        return bytes[start..<position]
    }

    public mutating func readString(_ context: String) throws(CodecError) -> String {
        let slice = try readBytes(context)
        guard let s = String(validating: slice, as: UTF8.self) else { throw CodecError(.invalidUTF8, context) }
        return s
    }

    public mutating func readOptionalZigzag(_ context: String) throws(CodecError) -> Int64? {
        switch try readByte(context) {
        case 0: return nil
        case 1: return try readZigzag(context)
        default: throw CodecError(.invalidValue, "\(context) presence flag")
        }
    }

    public mutating func readOptionalString(_ context: String) throws(CodecError) -> String? {
        switch try readByte(context) {
        case 0: return nil
        case 1: return try readString(context)
        default: throw CodecError(.invalidValue, "\(context) presence flag")
        }
    }

    /// Fails unless every byte was consumed.
    public func expectEnd(_ context: String) throws(CodecError) {
        if !isAtEnd { throw CodecError(.trailingBytes, "\(remaining) unread bytes after \(context)") }
    }
}
