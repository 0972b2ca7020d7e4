import FreshetCore

/// The byte form of a refresh result, so one instance (the refresh leader)
/// can publish it and every other instance load the very same vectors.
///
/// Only the refreshed items travel (fold-ins are recomputed by each item's
/// owner from its own row). A set is a header and chunks of at most
/// `maxChunkBytes`, each a field of one Redis hash, so no single value grows
/// with the catalogue (1 M items at dimension 64 are ~0.5 GiB of floats).
///
/// Header: `F` `V` `1`, version (zigzag varint), dimension (varint), item
/// count (varint), chunk count (varint), then `dimension` eigenvalues
/// (float32 LE, largest first).
/// Chunk: items back to back, each: id (length varint + bytes), degree
/// (zigzag varint), vector (`dimension` float32 LE), basis row (`dimension` float32 LE).
extension ItemVectorSet {
    package static let codecMagic: [UInt8] = [0x46, 0x56, 0x01]

    /// The set as (header, chunks). Items keep their order (the refresh's row order).
    package func encoded(maxChunkBytes: Int = 4 << 20) -> (header: [UInt8], chunks: [[UInt8]]) {
        var chunks: [[UInt8]] = []
        var chunk = ByteWriter(capacity: min(maxChunkBytes, 1 << 16))
        for r in 0..<refreshed {
            let before = chunk.bytes.count
            chunk.write(bytes: items[r].bytes)
            chunk.write(zigzag: degrees[r])
            Self.writeFloats(vectors[(r * dimension)..<((r + 1) * dimension)], into: &chunk)
            Self.writeFloats(basis[(r * dimension)..<((r + 1) * dimension)], into: &chunk)
            if chunk.bytes.count > maxChunkBytes && before > 0 {
                // Close the chunk before this item and start the next one with it.
                let item = Array(chunk.bytes[before...])
                chunk.bytes.removeSubrange(before...)
                chunks.append(chunk.bytes)
                chunk = ByteWriter(capacity: min(maxChunkBytes, 1 << 16))
                chunk.bytes.append(contentsOf: item)
            }
        }
        if !chunk.bytes.isEmpty { chunks.append(chunk.bytes) }
        var header = ByteWriter(capacity: 32 + 4 * dimension)
        header.bytes.append(contentsOf: Self.codecMagic)
        header.write(zigzag: version)
        header.write(varint: UInt64(dimension))
        header.write(varint: UInt64(refreshed))
        header.write(varint: UInt64(chunks.count))
        Self.writeFloats(eigenvalues[...], into: &header)
        return (header.bytes, chunks)
    }

    /// The chunk count a header announces (to fetch the chunks before decoding).
    /// - Throws: `CodecError` when the header is not a vector-set header.
    package static func chunkCount(header: [UInt8]) throws(CodecError) -> Int {
        try readHeader(header).chunks
    }

    /// Rebuilds a set from `encoded()`'s parts.
    /// - Throws: `CodecError` on a wrong magic, a truncated part, a chunk
    ///   count or item count that disagrees with the header, or a repeated item.
    package static func decode(header: [UInt8], chunks: [[UInt8]]) throws(CodecError) -> ItemVectorSet {
        let h = try readHeader(header)
        guard chunks.count == h.chunks else {
            throw CodecError(.invalidValue, "vector set: header announces \(h.chunks) chunks, got \(chunks.count)")
        }
        var items: [ByteId] = []
        var degrees: [Int64] = []
        var vectors: [Float] = []
        var basis: [Float] = []
        items.reserveCapacity(h.count)
        degrees.reserveCapacity(h.count)
        vectors.reserveCapacity(h.count * h.dimension)
        basis.reserveCapacity(h.count * h.dimension)
        for chunk in chunks {
            var reader = ByteReader(chunk)
            while !reader.isAtEnd {
                items.append(ByteId(bytes: Array(try reader.readBytes("vector set item id"))))
                degrees.append(try reader.readZigzag("vector set degree"))
                try readFloats(h.dimension, from: &reader, into: &vectors)
                try readFloats(h.dimension, from: &reader, into: &basis)
            }
        }
        guard items.count == h.count else {
            throw CodecError(.invalidValue, "vector set: header announces \(h.count) items, chunks hold \(items.count)")
        }
        let set = ItemVectorSet(version: h.version, dimension: h.dimension, items: items, vectors: vectors,
                                basis: basis, degrees: degrees, eigenvalues: h.eigenvalues)
        guard set.rowOf.count == items.count else {
            throw CodecError(.invalidValue, "vector set: an item appears twice")
        }
        return set
    }

    private static func readHeader(_ bytes: [UInt8]) throws(CodecError)
        -> (version: Int64, dimension: Int, count: Int, chunks: Int, eigenvalues: [Float]) {
        var reader = ByteReader(bytes)
        for expected in codecMagic where try reader.readByte("vector set magic") != expected {
            throw CodecError(.invalidValue, "vector set: not a vector set (wrong magic)")
        }
        let version = try reader.readZigzag("vector set version")
        let dimension = Int(try reader.readVarint("vector set dimension"))
        let count = Int(try reader.readVarint("vector set item count"))
        let chunks = Int(try reader.readVarint("vector set chunk count"))
        guard dimension > 0, dimension <= 4096 else {
            throw CodecError(.invalidValue, "vector set: dimension \(dimension) out of range")
        }
        var eigenvalues: [Float] = []
        try readFloats(dimension, from: &reader, into: &eigenvalues)
        try reader.expectEnd("vector set header")
        return (version, dimension, count, chunks, eigenvalues)
    }

    private static func writeFloats(_ values: ArraySlice<Float>, into writer: inout ByteWriter) {
        values.withUnsafeBufferPointer { writer.bytes.append(contentsOf: EmbeddingBlob.encode($0)) }
    }

    private static func readFloats(_ n: Int, from reader: inout ByteReader, into out: inout [Float]) throws(CodecError) {
        out.append(contentsOf: EmbeddingBlob.decode(Array(try reader.readBytes(count: 4 * n, "vector set floats"))))
    }
}
