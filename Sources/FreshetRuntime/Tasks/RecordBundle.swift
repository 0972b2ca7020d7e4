import FreshetCore

/// Many repartitioned records in one Kafka message.
///
/// An impression fans out to ten item events; sending each as its own Kafka
/// message made the repartition topic carry four times the source's message
/// count, and per-message costs (in librdkafka and the broker) dominated.
/// A source task therefore packs the records it routes to one partition during
/// a polled batch into one message. Order is kept (records are appended in
/// emission order, bundles are sent in order), so the downstream duplicate
/// filter, which relies on per-source order, is unaffected.
///
/// Format: leading byte 0xB1 (never a `RepartitionRecord` format byte), then
/// for each record a varint length and the record's bytes.
package enum RecordBundle {
    package static let leadingByte: UInt8 = 0xB1

    /// Appends one record to a bundle under construction (starts it if empty).
    package static func append(_ record: [UInt8], to bundle: inout [UInt8]) {
        record.withUnsafeBytes { append($0, to: &bundle) }
    }

    /// Appends one record given as borrowed bytes (copied). The leading byte
    /// (first record only) and the length varint go in one append, the record
    /// in another (each byte appended alone was a uniqueness and capacity check).
    package static func append(_ record: UnsafeRawBufferPointer, to bundle: inout [UInt8]) {
        var head: (UInt64, UInt64) = (0, 0) // the leading byte and up to 10 varint bytes
        let headCount = withUnsafeMutableBytes(of: &head) { h -> Int in
            var i = 0
            if bundle.isEmpty {
                h[0] = leadingByte
                i = 1
            }
            var length = UInt64(record.count)
            while length >= 0x80 {
                h[i] = UInt8(truncatingIfNeeded: length) | 0x80
                length >>= 7
                i += 1
            }
            h[i] = UInt8(length)
            return i + 1
        }
        withUnsafeBytes(of: &head) { h in
            bundle.append(contentsOf: UnsafeRawBufferPointer(rebasing: h[..<headCount]).assumingMemoryBound(to: UInt8.self))
        }
        bundle.append(contentsOf: record.assumingMemoryBound(to: UInt8.self))
    }

    /// Decodes each repartitioned record of `value` (a bundle or a single
    /// record) and passes it to `body` (an `ImpressionItemsRecord` as the
    /// item events it stands for). Returns how many could not be read:
    /// only Freshet writes these topics, so such a record comes from a newer or
    /// foreign writer, and skipping it (counted) keeps the task alive.
    package static func decodeEach(_ value: [UInt8], _ body: (RepartitionRecord) -> Void) -> Int {
        value.withUnsafeBytes { decodeEach($0, body) }
    }

    /// `decodeEach` over borrowed bytes.
    package static func decodeEach(_ value: UnsafeRawBufferPointer, _ body: (RepartitionRecord) -> Void) -> Int {
        forEachDecodable(in: value) { bytes throws(CodecError) in try RepartitionRecord.decodeEach(bytes, body) }
    }

    package static func forEachDecodable(in value: [UInt8],
                                         _ read: (UnsafeRawBufferPointer) throws(CodecError) -> Void) -> Int {
        value.withUnsafeBytes { forEachDecodable(in: $0, read) }
    }

    /// Calls `read` with each record of `value` (a bundle, or a plain
    /// message's one record) and returns how many could not be read: those
    /// `read` threw for, plus one when the bundle is truncated. What every
    /// task that reads a repartition topic counts as undecodable.
    package static func forEachDecodable(in value: UnsafeRawBufferPointer,
                                         _ read: (UnsafeRawBufferPointer) throws(CodecError) -> Void) -> Int {
        var undecodable = 0
        let complete = forEachRecord(in: value) { bytes in
            do throws(CodecError) {
                try read(bytes)
            } catch {
                undecodable += 1
            }
        }
        return complete ? undecodable : undecodable + 1
    }

    /// Calls `body` with each record of `value`: the records of a bundle, or
    /// `value` itself when it is a single record. Stops at a truncated bundle
    /// and returns false.
    @discardableResult
    package static func forEachRecord(in value: [UInt8], _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        value.withUnsafeBytes { forEachRecord(in: $0, body) }
    }

    /// `forEachRecord` over borrowed bytes (a consumed message's value).
    @discardableResult
    package static func forEachRecord(in bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard bytes.first == leadingByte else {
            body(bytes)
            return true
        }
        var position = 1
        while position < bytes.count {
            var length = 0
            var shift = 0
            while true {
                guard position < bytes.count, shift < 63 else { return false }
                let byte = bytes[position]
                position += 1
                length |= Int(byte & 0x7f) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
            }
            guard length <= bytes.count - position else { return false }
            body(UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)]))
            position += length
        }
        return true
    }
}
