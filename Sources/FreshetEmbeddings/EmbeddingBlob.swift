/// float32 little-endian blobs: the `embedding_<dim>d` field format (the one
/// Redis vector search indexes read), and the vectors inside a published
/// vector set (`ItemVectorSet.encoded`).
package enum EmbeddingBlob {
    package static func encode(_ values: [Float]) -> [UInt8] {
        values.withUnsafeBufferPointer { encode($0) }
    }

    /// One copy on little-endian hosts (every platform Swift runs Freshet on);
    /// byte by byte otherwise.
    package static func encode(_ values: UnsafeBufferPointer<Float>) -> [UInt8] {
        #if _endian(little)
        return Array(UnsafeRawBufferPointer(values))
        #else
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 4)
        for value in values {
            let bits = value.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
        }
        return bytes
        #endif
    }

    /// The floats of a blob (a trailing partial float is ignored).
    package static func decode(_ bytes: [UInt8]) -> [Float] {
        stride(from: 0, to: bytes.count - bytes.count % 4, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }
}
