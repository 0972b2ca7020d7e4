/// The few pieces of the protobuf wire format that Feast's values need:
/// varints, field tags, length-delimited fields. Hand-written on purpose: the
/// two messages Freshet emits (`feast.types.Value`, `google.protobuf.Timestamp`)
/// use four field shapes, and a protobuf runtime would cost build minutes.
///
/// A tag is `varint(field << 3 | wireType)`; a varint is 7 bits a byte, least
/// significant group first, the high bit set on every byte but the last; a
/// negative int64 is written as its 64-bit two's complement (10 bytes).
public enum ProtoWire {
    public enum WireType: UInt8, Sendable {
        case varint = 0
        case lengthDelimited = 2
    }

    /// Appends `value` as a base-128 varint (1 to 10 bytes).
    @inlinable
    public static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// Appends an int64 as protobuf does for `int64` fields (two's complement, not zigzag).
    @inlinable
    public static func appendVarint(int64 value: Int64, to bytes: inout [UInt8]) {
        appendVarint(UInt64(bitPattern: value), to: &bytes)
    }

    /// Appends the tag of field `number` with `wireType`.
    @inlinable
    public static func appendTag(_ number: UInt32, _ wireType: WireType, to bytes: inout [UInt8]) {
        appendVarint(UInt64(number) << 3 | UInt64(wireType.rawValue), to: &bytes)
    }

    /// Appends field `number` as a length-delimited field holding `payload`.
    @inlinable
    public static func appendLengthDelimited<Payload: Collection>(_ number: UInt32, _ payload: Payload,
                                                                   to bytes: inout [UInt8]) where Payload.Element == UInt8 {
        appendTag(number, .lengthDelimited, to: &bytes)
        appendVarint(UInt64(payload.count), to: &bytes)
        bytes.append(contentsOf: payload)
    }

    /// Number of bytes `appendVarint(value)` writes.
    @inlinable
    public static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var rest = value >> 7
        while rest != 0 { size += 1; rest >>= 7 }
        return size
    }
}
