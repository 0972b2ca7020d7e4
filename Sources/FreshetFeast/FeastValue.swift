/// Encoders for the two protobuf messages stored in Feast's hashes
/// (FEAST_LAYOUT.md section 4): `feast.types.Value` (one field of its oneof,
/// always written, even when 0 or empty) and `google.protobuf.Timestamp`.
package enum FeastValue {
    /// Field numbers of `Value`'s oneof that Freshet writes.
    static let int64Field: UInt32 = 4
    static let stringListField: UInt32 = 12
    static let floatListField: UInt32 = 16

    /// `Int64` feature: `20 varint(n)`.
    package static func int64(_ value: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(11)
        ProtoWire.appendTag(int64Field, .varint, to: &bytes)
        ProtoWire.appendVarint(int64: value, to: &bytes)
        return bytes
    }

    /// `Array(String)` feature: `string_list_val`, a `StringList` whose field 1
    /// repeats once per string (strings are not packed).
    package static func stringList(_ values: [String]) -> [UInt8] {
        var list: [UInt8] = []
        for value in values { ProtoWire.appendLengthDelimited(1, value.utf8, to: &list) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(list.count + 6)
        ProtoWire.appendLengthDelimited(stringListField, list, to: &bytes)
        return bytes
    }

    /// `Array(Float32)` feature from a float32 little-endian blob (Freshet's
    /// `embedding_<dim>d` field): `float_list_val`, a `FloatList` whose packed
    /// field 1 is exactly the blob. For 128 floats: `82 01 83 04 0a 80 04` + 512 bytes.
    /// An empty list is `82 01 00` (protobuf leaves an empty packed field out).
    /// - Precondition: `blob.count` is a multiple of 4.
    package static func floatList(float32LittleEndian blob: [UInt8]) -> [UInt8] {
        var inner: [UInt8] = []
        if !blob.isEmpty {
            ProtoWire.appendTag(1, .lengthDelimited, to: &inner)
            ProtoWire.appendVarint(UInt64(blob.count), to: &inner)
        }
        var bytes: [UInt8] = []
        let innerLength = inner.count + blob.count
        bytes.reserveCapacity(innerLength + 8)
        ProtoWire.appendTag(floatListField, .lengthDelimited, to: &bytes)
        ProtoWire.appendVarint(UInt64(innerLength), to: &bytes)
        bytes.append(contentsOf: inner)
        bytes.append(contentsOf: blob)
        return bytes
    }

    /// `google.protobuf.Timestamp` of an epoch-millisecond time: `08 varint(seconds)`
    /// then `10 varint(nanos)`, each left out when 0. Floor division keeps nanos
    /// in 0..<10^9 for times before 1970 too.
    package static func timestamp(epochMs: Int64) -> [UInt8] {
        var seconds = epochMs / 1000
        var millis = epochMs % 1000
        if millis < 0 { seconds -= 1; millis += 1000 }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        if seconds != 0 {
            ProtoWire.appendTag(1, .varint, to: &bytes)
            ProtoWire.appendVarint(int64: seconds, to: &bytes)
        }
        if millis != 0 {
            ProtoWire.appendTag(2, .varint, to: &bytes)
            ProtoWire.appendVarint(UInt64(millis) * 1_000_000, to: &bytes)
        }
        return bytes
    }
}
