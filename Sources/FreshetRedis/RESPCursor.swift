/// Writes RESP bulk strings (`$len\r\nbytes\r\n`) with plain stores into
/// space reserved in a `RedisCommand`'s body (`RedisCommand.append(maxBytes:_:)`).
///
/// Why: the flush writes one `HSET` per changed key with several arguments,
/// and each `RedisCommand.append` was a call with its own uniqueness and
/// capacity checks and several small array appends. Here a whole group of
/// arguments costs one reservation. The bytes are exactly what the same
/// sequence of `RedisCommand.append` calls writes (`RESPCursorTests`).
/// Every write is bounds-checked against the reservation: a wrong bound traps
/// instead of corrupting memory.
public struct RESPCursor {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int
    @usableFromInline var written = 0
    /// Bulk strings written so far (the command's argument count grows by this).
    @usableFromInline var arguments = 0

    @inlinable
    init(base: UnsafeMutableRawPointer, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    /// Bytes one bulk string of `length` bytes takes: `$`, up to 20 digits, CRLF, the bytes, CRLF.
    @inlinable
    public static func maxBytes(length: Int) -> Int { 1 + 20 + 2 + length + 2 }

    /// Bytes one integer argument takes at most (`Int64.min` has 20 characters).
    public static let maxIntegerBytes = maxBytes(length: 20)

    /// One argument, the bytes unchanged.
    @inlinable
    public mutating func bulk(_ bytes: UnsafeRawBufferPointer) {
        header(length: bytes.count)
        raw(bytes)
        crlf()
    }

    /// One argument made of `prefix` then `suffix` (a key such as `user:<id>`).
    @inlinable
    public mutating func bulk(_ prefix: UnsafeRawBufferPointer, _ suffix: UnsafeRawBufferPointer) {
        header(length: prefix.count &+ suffix.count)
        raw(prefix)
        raw(suffix)
        crlf()
    }

    /// One argument, a literal's UTF-8 (field names).
    @inlinable
    public mutating func bulk(_ literal: StaticString) {
        bulk(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// One argument, the decimal form of `value` (as `RedisCommand.append(_: Int64)`).
    @inlinable
    public mutating func bulk(_ value: Int64) {
        var magnitude = value.magnitude
        var digits = 1
        var bound: UInt64 = 10
        // Count digits first so the header and digits go straight to their places.
        while digits < 20 && magnitude >= bound {
            digits &+= 1
            bound = bound &* 10
        }
        let length = digits &+ (value < 0 ? 1 : 0)
        header(length: length)
        precondition(written &+ length <= capacity, "RESPCursor overflow")
        if value < 0 { base.storeBytes(of: 45, toByteOffset: written, as: UInt8.self) }
        var i = written &+ length
        repeat {
            i &-= 1
            base.storeBytes(of: UInt8(truncatingIfNeeded: 48 &+ magnitude % 10), toByteOffset: i, as: UInt8.self)
            magnitude /= 10
        } while magnitude > 0
        written &+= length
        crlf()
    }

    @inlinable
    mutating func header(length: Int) {
        precondition(length >= 0 && written &+ 23 <= capacity, "RESPCursor overflow")
        arguments &+= 1
        base.storeBytes(of: 36, toByteOffset: written, as: UInt8.self) // "$"
        written &+= 1
        if length < 10 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: 48 &+ length), toByteOffset: written, as: UInt8.self)
            written &+= 1
        } else {
            var n = 1
            var bound = 10
            while length >= bound && n < 19 {
                n &+= 1
                bound = bound &* 10
            }
            var rest = length
            var i = written &+ n
            repeat {
                i &-= 1
                base.storeBytes(of: UInt8(truncatingIfNeeded: 48 &+ rest % 10), toByteOffset: i, as: UInt8.self)
                rest /= 10
            } while rest > 0
            written &+= n
        }
        crlf()
    }

    @inlinable
    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        precondition(written &+ n <= capacity, "RESPCursor overflow")
        if n > 0, let p = bytes.baseAddress { (base + written).copyMemory(from: p, byteCount: n) }
        written &+= n
    }

    @inlinable
    mutating func crlf() {
        precondition(written &+ 2 <= capacity, "RESPCursor overflow")
        base.storeBytes(of: 13, toByteOffset: written, as: UInt8.self)
        base.storeBytes(of: 10, toByteOffset: written &+ 1, as: UInt8.self)
        written &+= 2
    }
}
