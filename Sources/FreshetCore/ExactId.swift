#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ids are byte strings (DESIGN.md, "Input events"): two ids are the same only
/// when their UTF-8 bytes are equal. Swift's `String` `==`, `<` and hashing use
/// Unicode canonical equivalence ("caf\u{E9}" == "cafe\u{301}"), so every map,
/// set or comparison of ids goes through these helpers (or `ExactId`) instead.
///
/// Strings decoded from input keep their bytes exactly (Swift never normalises
/// storage), so comparing `utf8` views is comparing what the producer sent.
public enum IdBytes {
    /// True when the UTF-8 bytes of `a` and `b` are equal.
    @inlinable
    public static func equal(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        // Both read where they are, as `equal(_:bytes:)` reads its `String`:
        // copies for `withUTF8` retained and released each, and the byte
        // loop ran per byte for the short ids (~170 instructions a call, the
        // join's most frequent comparison). Native strings (ids are decoded
        // from bytes) have contiguous UTF-8; the copies are left for the others.
        if let equal = a.utf8.withContiguousStorageIfAvailable({ pa in
            b.utf8.withContiguousStorageIfAvailable { pb in
                equal(bytes: UnsafeRawBufferPointer(pa), UnsafeRawBufferPointer(pb))
            }
        }), let equal {
            return equal
        }
        var a = a, b = b
        return a.withUTF8 { pa in b.withUTF8 { pb in equal(bytes: UnsafeRawBufferPointer(pa), UnsafeRawBufferPointer(pb)) } }
    }

    /// True when the UTF-8 bytes of `a` are `b`.
    @inlinable @inline(__always)
    public static func equal(_ a: String, bytes b: UnsafeRawBufferPointer) -> Bool {
        guard a.utf8.count == b.count else { return false }
        // The stored id read where it is: a copy (`var a = a`, for
        // `withUTF8`) retained and released it, two runtime calls per key
        // compared. Every native `String` (ids are decoded from bytes) has
        // contiguous UTF-8; the copy is left for the others.
        if let equal = a.utf8.withContiguousStorageIfAvailable({ equal(bytes: UnsafeRawBufferPointer($0), b) }) {
            return equal
        }
        var a = a
        return a.withUTF8 { equal(bytes: UnsafeRawBufferPointer($0), b) }
    }

    /// True when two byte runs are equal. Ids are short: up to 16 bytes are
    /// settled by a few overlapping loads per side without a call into
    /// `memcmp` (the keys' common case).
    @inlinable @inline(__always)
    public static func equal(bytes a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let n = a.count
        guard b.count == n else { return false }
        guard n > 0, let x = a.baseAddress, let y = b.baseAddress else { return true }
        if n >= 8 && n <= 16 {
            return x.loadUnaligned(as: UInt64.self) == y.loadUnaligned(as: UInt64.self)
                && x.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
                    == y.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
        }
        if n >= 4 && n < 8 {
            return x.loadUnaligned(as: UInt32.self) == y.loadUnaligned(as: UInt32.self)
                && x.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
                    == y.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
        }
        if n < 4 {
            // First, middle and last byte cover every byte of 1-3 (the most
            // popular ids of a catalogue numbered from one are this short).
            return x.load(as: UInt8.self) == y.load(as: UInt8.self)
                && x.load(fromByteOffset: n >> 1, as: UInt8.self) == y.load(fromByteOffset: n >> 1, as: UInt8.self)
                && x.load(fromByteOffset: n &- 1, as: UInt8.self) == y.load(fromByteOffset: n &- 1, as: UInt8.self)
        }
        return memcmp(x, y, n) == 0
    }

    /// Hashing needs no byte-level variant: `String`'s hash is a function of
    /// the canonical form, and byte-equal ids are canonically equal, so
    /// "equal bytes ⇒ equal hashes" holds with Swift's own (seeded, fast)
    /// string hash. Canonically equivalent ids that differ in bytes merely
    /// share a hash; `equal` tells them apart.
    @inlinable
    public static func hash(_ s: String, into hasher: inout Hasher) { hasher.combine(s) }

    /// A hash consistent with `equal` (see `hash(_:into:)`).
    @inlinable
    public static func hashValue(_ s: String) -> Int { s.hashValue }

    /// Byte-wise lexicographic order of the UTF-8 bytes (for NFC text the same
    /// as code-point order, but never conflating canonically equivalent ids).
    @inlinable
    public static func less(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

/// An id that compares, hashes and orders by its UTF-8 bytes: the key type of
/// every dictionary or set of ids.
public struct ExactId: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let string: String

    @inlinable public init(_ string: String) { self.string = string }
    public init(stringLiteral value: String) { self.string = value }

    @inlinable public static func == (a: ExactId, b: ExactId) -> Bool { IdBytes.equal(a.string, b.string) }
    @inlinable public func hash(into hasher: inout Hasher) { IdBytes.hash(string, into: &hasher) }
    @inlinable public static func < (a: ExactId, b: ExactId) -> Bool { IdBytes.less(a.string, b.string) }
    public var description: String { string }
}

/// A dictionary keyed by ids, compared as bytes, with `Dictionary`'s API over
/// `String` keys (so call sites read as before).
public struct IdMap<Value> {
    @usableFromInline var storage: [ExactId: Value]

    @inlinable public init() { storage = [:] }
    @inlinable init(storage: [ExactId: Value]) { self.storage = storage }

    @inlinable public var count: Int { storage.count }
    @inlinable public var isEmpty: Bool { storage.isEmpty }
    public var keys: [String] { storage.keys.map(\.string) }
    public var values: Dictionary<ExactId, Value>.Values { storage.values }

    @inlinable
    public subscript(_ id: String) -> Value? {
        get { storage[ExactId(id)] }
        set { storage[ExactId(id)] = newValue }
    }

    @inlinable
    public subscript(_ id: String, default defaultValue: @autoclosure () -> Value) -> Value {
        get { storage[ExactId(id), default: defaultValue()] }
        set { storage[ExactId(id)] = newValue }
    }

    @inlinable @discardableResult
    public mutating func removeValue(forKey id: String) -> Value? { storage.removeValue(forKey: ExactId(id)) }

    @inlinable
    public mutating func removeAll(keepingCapacity keep: Bool = false) { storage.removeAll(keepingCapacity: keep) }

    public func filter(_ isIncluded: ((key: String, value: Value)) throws -> Bool) rethrows -> IdMap<Value> {
        IdMap(storage: try storage.filter { try isIncluded((key: $0.key.string, value: $0.value)) })
    }
}

extension IdMap: Sequence {
    public typealias Element = (key: String, value: Value)
    public func makeIterator() -> AnyIterator<Element> {
        var inner = storage.makeIterator()
        return AnyIterator { inner.next().map { (key: $0.key.string, value: $0.value) } }
    }
}

extension IdMap: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, Value)...) {
        storage = [:]
        for (k, v) in elements { storage[ExactId(k)] = v }
    }
}

extension IdMap: Sendable where Value: Sendable {}
extension IdMap: Equatable where Value: Equatable {}

/// A set of ids compared as bytes, with `Set`'s API over `String` elements.
public struct IdSet: Sendable, Equatable, Sequence, ExpressibleByArrayLiteral {
    @usableFromInline var storage: Set<ExactId>

    @inlinable public init() { storage = [] }
    public init(arrayLiteral elements: String...) { storage = Set(elements.map { ExactId($0) }) }
    public init<S: Sequence>(_ ids: S) where S.Element == String { storage = Set(ids.map { ExactId($0) }) }

    @inlinable public var count: Int { storage.count }
    @inlinable public var isEmpty: Bool { storage.isEmpty }
    @inlinable public func contains(_ id: String) -> Bool { storage.contains(ExactId(id)) }
    @inlinable @discardableResult
    public mutating func insert(_ id: String) -> Bool { storage.insert(ExactId(id)).inserted }
    @inlinable @discardableResult
    public mutating func remove(_ id: String) -> String? { storage.remove(ExactId(id))?.string }
    @inlinable
    public mutating func removeAll(keepingCapacity keep: Bool = false) { storage.removeAll(keepingCapacity: keep) }

    public func makeIterator() -> AnyIterator<String> {
        var inner = storage.makeIterator()
        return AnyIterator { inner.next()?.string }
    }
}
