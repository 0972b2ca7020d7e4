/// Appends the little binary format used by state snapshots and repartition
/// records: LEB128 varints, zigzag varints for signed values, fixed little-endian
/// 64-bit words, IEEE doubles, and varint-length-prefixed UTF-8 strings.
public struct ByteWriter: Sendable {
    public var bytes: [UInt8]

    @inlinable
    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inlinable
    public mutating func write(byte: UInt8) { bytes.append(byte) }

    /// LEB128. Multi-byte values are staged in a small stack buffer and appended at
    /// once: per-byte `append` (a uniqueness and capacity check each) dominated the
    /// cost of encoding repartition records.
    @inlinable
    public mutating func write(varint: UInt64) {
        if varint < 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: varint))
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 10) { tmp in
            var v = varint
            var n = 0
            while v >= 0x80 {
                tmp[n] = UInt8(truncatingIfNeeded: v) | 0x80
                v >>= 7
                n += 1
            }
            tmp[n] = UInt8(truncatingIfNeeded: v)
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: tmp[0...n]))
        }
    }

    /// Zigzag so small negative numbers stay short.
    @inlinable
    public mutating func write(zigzag: Int64) {
        write(varint: UInt64(bitPattern: (zigzag << 1) ^ (zigzag >> 63)))
    }

    public mutating func write(int64: Int64) {
        withUnsafeBytes(of: int64.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(double: Double) { write(int64: Int64(bitPattern: double.bitPattern)) }

    @inlinable
    public mutating func write(string: String) {
        // Native strings expose their UTF-8 without a copy; others take the slow path.
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { utf8 in
            write(varint: UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
        if done == nil {
            var copy = string
            copy.withUTF8 { utf8 in
                write(varint: UInt64(utf8.count))
                bytes.append(contentsOf: utf8)
            }
        }
    }

    /// Raw bytes, length-prefixed.
    public mutating func write(bytes other: some Collection<UInt8>) {
        write(varint: UInt64(other.count))
        bytes.append(contentsOf: other)
    }

    /// Presence flag (0/1) followed by the value when present.
    public mutating func write(optionalZigzag v: Int64?) {
        if let v { write(byte: 1); write(zigzag: v) } else { write(byte: 0) }
    }

    public mutating func write(optionalString v: String?) {
        if let v { write(byte: 1); write(string: v) } else { write(byte: 0) }
    }
}
