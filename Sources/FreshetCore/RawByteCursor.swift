/// Writes the `ByteWriter` format into a fixed, pre-sized scratch buffer with
/// plain stores (no per-byte array growth checks); `ByteWriter.append(maxBytes:_:)`
/// then copies the result into the array once. Every write is bounds-checked
/// against the scratch capacity (a wrong size bound traps instead of corrupting).
public struct RawByteCursor {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int
    @usableFromInline var written = 0
    /// Bytes written so far.
    public var count: Int { written }

    /// A cursor over `capacity` bytes at `base` (scratch space the caller owns).
    @inlinable
    public init(base: UnsafeMutableRawPointer, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    /// Upper bound of a varint's size.
    public static let maxVarintBytes = 10

    /// Upper bound of `write(string:)` for `s`.
    @inlinable
    public static func maxBytes(_ s: String) -> Int { maxVarintBytes + s.utf8.count }

    @inlinable @inline(__always)
    public mutating func write(byte: UInt8) {
        precondition(written < capacity, "RawByteCursor overflow")
        base.storeBytes(of: byte, toByteOffset: written, as: UInt8.self)
        written &+= 1
    }

    @inlinable @inline(__always)
    public mutating func write(varint: UInt64) {
        precondition(written &+ Self.maxVarintBytes <= capacity || varint < 0x80 && written < capacity,
                     "RawByteCursor overflow")
        var v = varint
        var i = written
        while v >= 0x80 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: i, as: UInt8.self)
            v >>= 7
            i &+= 1
        }
        base.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
        written = i &+ 1
    }

    @inlinable @inline(__always)
    public mutating func write(zigzag: Int64) {
        write(varint: UInt64(bitPattern: (zigzag << 1) ^ (zigzag >> 63)))
    }

    /// Raw bytes, no length prefix.
    @inlinable
    public mutating func write(raw bytes: [UInt8]) {
        let n = bytes.count
        precondition(written &+ n <= capacity, "RawByteCursor overflow")
        let dest = base + written
        bytes.withUnsafeBytes { src in
            if let p = src.baseAddress { dest.copyMemory(from: p, byteCount: n) }
        }
        written &+= n
    }

    /// Raw bytes, no length prefix. Ids are short: up to 16 bytes are copied
    /// with two (overlapping) loads and stores instead of a `memmove` call
    /// (a routed record copies three ids).
    @inlinable @inline(__always)
    public mutating func write(raw bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        precondition(written &+ n <= capacity, "RawByteCursor overflow")
        guard n > 0, let p = bytes.baseAddress else { return }
        let dest = base + written
        if n >= 8 && n <= 16 {
            let head = p.loadUnaligned(as: UInt64.self)
            let tail = p.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
            dest.storeBytes(of: head, as: UInt64.self)
            dest.storeBytes(of: tail, toByteOffset: n &- 8, as: UInt64.self)
        } else if n >= 4 && n < 8 {
            let head = p.loadUnaligned(as: UInt32.self)
            let tail = p.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
            dest.storeBytes(of: head, as: UInt32.self)
            dest.storeBytes(of: tail, toByteOffset: n &- 4, as: UInt32.self)
        } else if n < 4 {
            for i in 0..<n { dest.storeBytes(of: p.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self) }
        } else {
            dest.copyMemory(from: p, byteCount: n)
        }
        written &+= n
    }

    /// Length-prefixed bytes: the same encoding as `write(string:)` of the
    /// string whose UTF-8 they are.
    @inlinable @inline(__always)
    public mutating func write(bytes: UnsafeRawBufferPointer) {
        write(varint: UInt64(bytes.count))
        write(raw: bytes)
    }

    @inlinable
    public mutating func write(string: String) {
        let n = string.utf8.count
        write(varint: UInt64(n))
        precondition(written &+ n <= capacity, "RawByteCursor overflow")
        let dest = base + written
        let copied: Void? = string.utf8.withContiguousStorageIfAvailable { src in
            if let p = src.baseAddress { dest.copyMemory(from: p, byteCount: n) }
        }
        if copied == nil {
            var i = 0
            for b in string.utf8 {
                dest.storeBytes(of: b, toByteOffset: i, as: UInt8.self)
                i &+= 1
            }
        }
        written &+= n
    }

    @inlinable @inline(__always)
    public mutating func write(optionalZigzag v: Int64?) {
        if let v { write(byte: 1); write(zigzag: v) } else { write(byte: 0) }
    }

    @inlinable
    public mutating func write(optionalString v: String?) {
        if let v { write(byte: 1); write(string: v) } else { write(byte: 0) }
    }

    /// A presence byte, then the bytes length-prefixed when present (the
    /// encoding of `write(optionalString:)`).
    @inlinable @inline(__always)
    public mutating func write(optionalBytes v: UnsafeRawBufferPointer?) {
        if let v { write(byte: 1); write(bytes: v) } else { write(byte: 0) }
    }

    /// Runs `write` over a cursor of `capacity` bytes of scratch space on the
    /// stack and hands what it wrote to `body`, valid during the call (no
    /// array, no allocation). `capacity` must bound what `write` writes.
    ///
    /// Not generic on purpose: the generic version (`body` returning `R`)
    /// was called unspecialised from the other modules' tasks, and every
    /// call looked its generic metadata up at run time (about 5% of the
    /// processing thread, in `swift_getGenericMetadata`). A caller that
    /// needs a result sets a local from `body`.
    @inlinable
    public static func withScratch(capacity: Int, write: (inout RawByteCursor) -> Void,
                                    _ body: (UnsafeRawBufferPointer) -> Void) {
        withUnsafeTemporaryAllocation(byteCount: Swift.max(capacity, 1), alignment: 1) { scratch in
            guard let base = scratch.baseAddress else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
            var c = RawByteCursor(base: base, capacity: scratch.count)
            write(&c)
            body(UnsafeRawBufferPointer(start: base, count: c.count))
        }
    }
}

extension ByteWriter {
    /// Runs `body` over a scratch cursor of `maxBytes` and appends what it wrote
    /// in one copy. `maxBytes` must bound what `body` writes.
    @inlinable
    public mutating func append(maxBytes: Int, _ body: (inout RawByteCursor) -> Void) {
        RawByteCursor.withScratch(capacity: maxBytes, write: body) { bytes.append(contentsOf: $0) }
    }
}
