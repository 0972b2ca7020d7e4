import FreshetCore

/// The compact binary encoding of training examples in `freshet-examples`
/// (issue 7: the JSON lines cost more than the join). A Kafka message is a
/// bundle: the 3-byte header `F` `X` `1` (0x46 0x58 0x01), then examples back
/// to back, each self-delimiting:
///
/// | field | encoding |
/// |---|---|
/// | flags | 1 byte: bit 0 label (1 positive), bit 1 late, bit 2 position, bit 3 dwell, bit 4 request id, bit 5 impression ts, bit 6 features |
/// | action | 1 byte: 0 none (impressed, not engaged), 1 click, 2 watch, 3 like, 4 share, 5 skip |
/// | user id, item id | each: length varint, UTF-8 bytes |
/// | ts | zigzag varint (epoch ms) |
/// | impression ts (bit 5) | zigzag varint of ts − impression ts |
/// | position (bit 2) | zigzag varint |
/// | dwell ms (bit 3) | zigzag varint |
/// | request id (bit 4) | length varint, UTF-8 bytes |
/// | features (bit 6) | interaction_count, popularity_7d, impressions_7d: zigzag varints |
///
/// Varints are LEB128 (7 bits a byte, least significant first); zigzag maps
/// n to (n << 1) ^ (n >> 63). A typical example takes 30-45 bytes against
/// ~200 as a JSON line. Values are exact (no rounding anywhere).
public enum ExampleCodec {
    public static let header: [UInt8] = [0x46, 0x58, 0x01]

    /// Appends one example to `out`.
    public static func append(_ e: TrainingExample, to out: inout [UInt8]) {
        var flags: UInt8 = e.label == .positive ? 1 : 0
        if e.late { flags |= 1 << 1 }
        if e.position != nil { flags |= 1 << 2 }
        if e.dwellMs != nil { flags |= 1 << 3 }
        if e.requestId != nil { flags |= 1 << 4 }
        if e.impressionTs != nil { flags |= 1 << 5 }
        if e.features != nil { flags |= 1 << 6 }
        out.append(flags)
        // The action byte is `Action.rawValue` (1...5), 0 for none.
        out.append(e.action?.rawValue ?? 0)
        string(e.userId, &out)
        string(e.itemId, &out)
        zigzag(e.eventTs, &out)
        if let t = e.impressionTs { zigzag(e.eventTs &- t, &out) }
        if let p = e.position { zigzag(Int64(p), &out) }
        if let d = e.dwellMs { zigzag(d, &out) }
        if let r = e.requestId { string(r, &out) }
        if let f = e.features {
            zigzag(f.interactionCount, &out)
            zigzag(f.popularity7d, &out)
            zigzag(f.impressions7d, &out)
        }
    }

    /// One example's bytes (no bundle header).
    public static func encode(_ e: TrainingExample) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(48)
        append(e, to: &out)
        return out
    }

    /// Decodes a bundle (header, then examples). Throws `ExampleCodecError`
    /// on a wrong header, truncation or an unknown action.
    public static func decodeBundle(_ bytes: [UInt8]) throws(ExampleCodecError) -> [TrainingExample] {
        guard bytes.starts(with: header) else { throw ExampleCodecError(offset: 0, reason: "not an examples bundle (header F X 1)") }
        var reader = Reader(bytes: bytes, i: header.count)
        var out: [TrainingExample] = []
        while reader.i < bytes.count { out.append(try reader.example()) }
        return out
    }

    private static func varint(_ v: UInt64, _ out: inout [UInt8]) {
        var v = v
        while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    private static func zigzag(_ v: Int64, _ out: inout [UInt8]) {
        varint(UInt64(bitPattern: (v << 1) ^ (v >> 63)), &out)
    }

    private static func string(_ s: String, _ out: inout [UInt8]) {
        varint(UInt64(s.utf8.count), &out)
        out.append(contentsOf: s.utf8)
    }

    struct Reader {
        let bytes: [UInt8]
        var i: Int

        mutating func byte() throws(ExampleCodecError) -> UInt8 {
            guard i < bytes.count else { throw ExampleCodecError(offset: i, reason: "truncated") }
            defer { i += 1 }
            return bytes[i]
        }

        mutating func varint() throws(ExampleCodecError) -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                let b = try byte()
                v |= UInt64(b & 0x7f) << shift
                if b < 0x80 { return v }
                shift += 7
                guard shift < 64 else { throw ExampleCodecError(offset: i, reason: "varint too long") }
            }
        }

        mutating func zigzag() throws(ExampleCodecError) -> Int64 {
            let z = try varint()
            return Int64(bitPattern: z >> 1) ^ -Int64(bitPattern: z & 1)
        }

        mutating func string() throws(ExampleCodecError) -> String {
            let n = try varint()
            guard n <= UInt64(bytes.count - i) else { throw ExampleCodecError(offset: i, reason: "string truncated") }
            defer { i += Int(n) }
            return String(decoding: bytes[i..<(i + Int(n))], as: UTF8.self)
        }

        mutating func example() throws(ExampleCodecError) -> TrainingExample {
            let flags = try byte()
            let code = try byte()
            var action: Action?
            if code != 0 {
                guard let known = Action(rawValue: code) else { throw ExampleCodecError(offset: i - 1, reason: "unknown action \(code)") }
                action = known
            }
            let user = try string()
            let item = try string()
            let ts = try zigzag()
            let impressionTs = flags & (1 << 5) != 0 ? ts &- (try zigzag()) : nil
            let position = flags & (1 << 2) != 0 ? Int(try zigzag()) : nil
            let dwell = flags & (1 << 3) != 0 ? try zigzag() : nil
            let request = flags & (1 << 4) != 0 ? try string() : nil
            var features: ServingFeatures?
            if flags & (1 << 6) != 0 {
                features = ServingFeatures(interactionCount: try zigzag(), popularity7d: try zigzag(), impressions7d: try zigzag())
            }
            return TrainingExample(label: flags & 1 != 0 ? .positive : .negative, userId: user, itemId: item, action: action,
                                   position: position, dwellMs: dwell, requestId: request, impressionTs: impressionTs,
                                   eventTs: ts, features: features, late: flags & (1 << 1) != 0)
        }
    }
}

/// A malformed examples bundle: where, and what was wrong.
public struct ExampleCodecError: Error, CustomStringConvertible, Sendable {
    public let offset: Int
    public let reason: String
    public var description: String { "examples bundle, byte \(offset): \(reason)" }
}
