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
/// n to (n << 1) ^ (n >> 63): FreshetCore's `ByteWriter` / `BorrowedByteReader`
/// format, so strings are checked to be valid UTF-8 when read. A typical
/// example takes 30-45 bytes against ~200 as a JSON line. Values are exact (no rounding anywhere).
package enum ExampleCodec {
    package static let header: [UInt8] = [0x46, 0x58, 0x01]

    /// Appends one example to `out`.
    package static func append(_ e: TrainingExample, to out: inout [UInt8]) {
        withEncoded(e) { out.append(contentsOf: $0) }
    }

    /// Calls `body` with one example's bytes (no bundle header), written in
    /// scratch memory and valid during the call only: the processor's path,
    /// with no allocation per example (a `[UInt8]` each, and `ByteWriter`'s
    /// appends, were ~1,400 instructions an example, `freshet bench tasks`).
    package static func withEncoded(_ e: TrainingExample, _ body: (UnsafeRawBufferPointer) -> Void) {
        RawByteCursor.withScratch(capacity: maxBytes(e), write: { write(e, to: &$0) }, body)
    }

    /// A bound on one example's size: flags and action, at most seven
    /// varints, and the ids with their length varints.
    static func maxBytes(_ e: TrainingExample) -> Int {
        2 + 7 * RawByteCursor.maxVarintBytes + RawByteCursor.maxBytes(e.userId) + RawByteCursor.maxBytes(e.itemId)
            + (e.requestId.map(RawByteCursor.maxBytes) ?? 0)
    }

    /// Writes one example with FreshetCore's codec (LEB128 and zigzag varints,
    /// varint-length-prefixed UTF-8): the layout in the table above.
    static func write(_ e: TrainingExample, to w: inout RawByteCursor) {
        var flags: UInt8 = e.label == .positive ? 1 : 0
        if e.late { flags |= 1 << 1 }
        if e.position != nil { flags |= 1 << 2 }
        if e.dwellMs != nil { flags |= 1 << 3 }
        if e.requestId != nil { flags |= 1 << 4 }
        if e.impressionTs != nil { flags |= 1 << 5 }
        if e.features != nil { flags |= 1 << 6 }
        w.write(byte: flags)
        // The action byte is `Action.rawValue` (1...5), 0 for none.
        w.write(byte: e.action?.rawValue ?? 0)
        w.write(string: e.userId)
        w.write(string: e.itemId)
        w.write(zigzag: e.eventTs)
        if let t = e.impressionTs { w.write(zigzag: e.eventTs &- t) }
        if let p = e.position { w.write(zigzag: Int64(p)) }
        if let d = e.dwellMs { w.write(zigzag: d) }
        if let r = e.requestId { w.write(string: r) }
        if let f = e.features {
            w.write(zigzag: f.interactionCount)
            w.write(zigzag: f.popularity7d)
            w.write(zigzag: f.impressions7d)
        }
    }

    /// One example's bytes (no bundle header).
    package static func encode(_ e: TrainingExample) -> [UInt8] {
        var out: [UInt8] = []
        withEncoded(e) { out = Array($0) }
        return out
    }

    /// Decodes a bundle (header, then examples). Throws `ExampleCodecError`
    /// on a wrong header, truncation, an invalid varint or string, or an
    /// unknown action.
    package static func decodeBundle(_ bytes: [UInt8]) throws(ExampleCodecError) -> [TrainingExample] {
        guard bytes.starts(with: header) else { throw ExampleCodecError(offset: 0, reason: "not an examples bundle (header F X 1)") }
        let result: Result<[TrainingExample], ExampleCodecError> = bytes.withUnsafeBytes { raw in
            var r = BorrowedByteReader(raw, position: header.count)
            var out: [TrainingExample] = []
            do throws(ExampleCodecError) {
                while !r.isAtEnd { out.append(try example(&r)) }
                return .success(out)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// One example at the reader's position; a codec failure becomes an
    /// `ExampleCodecError` at the offset where decoding stopped.
    static func example(_ r: inout BorrowedByteReader) throws(ExampleCodecError) -> TrainingExample {
        do throws(CodecError) {
            let flags = try r.readByte("example flags")
            let code = try r.readByte("example action")
            var action: Action?
            if code != 0 {
                guard let known = Action(rawValue: code) else { throw CodecError(.invalidValue, "unknown action \(code)") }
                action = known
            }
            let user = try r.readString("example user id")
            let item = try r.readString("example item id")
            let ts = try r.readZigzag("example ts")
            let impressionTs = flags & (1 << 5) != 0 ? ts &- (try r.readZigzag("example impression ts")) : nil
            let position = flags & (1 << 2) != 0 ? Int(truncatingIfNeeded: try r.readZigzag("example position")) : nil
            let dwell = flags & (1 << 3) != 0 ? try r.readZigzag("example dwell ms") : nil
            let request = flags & (1 << 4) != 0 ? try r.readString("example request id") : nil
            var features: ServingFeatures?
            if flags & (1 << 6) != 0 {
                features = ServingFeatures(interactionCount: try r.readZigzag("example interaction_count"),
                                           popularity7d: try r.readZigzag("example popularity_7d"),
                                           impressions7d: try r.readZigzag("example impressions_7d"))
            }
            return TrainingExample(label: flags & 1 != 0 ? .positive : .negative, userId: user, itemId: item, action: action,
                                   position: position, dwellMs: dwell, requestId: request, impressionTs: impressionTs,
                                   eventTs: ts, features: features, late: flags & (1 << 1) != 0)
        } catch {
            throw ExampleCodecError(offset: r.position, reason: "\(error.kind.rawValue): \(error.context)")
        }
    }
}

/// A malformed examples bundle: where, and what was wrong.
package struct ExampleCodecError: Error, CustomStringConvertible, Sendable {
    package let offset: Int
    package let reason: String
    package var description: String { "examples bundle, byte \(offset): \(reason)" }
}
