/// Maps strings (item or user ids) to dense `UInt32` indices and back, so keyed
/// state can hold 4-byte references instead of 16-byte `String`s. Strings are
/// the same only when their UTF-8 bytes are (`IdBytes`).
///
/// Indices are never reused: the interner only grows. Stores that forget keys
/// should rebuild it at checkpoint restore time.
package struct StringInterner: Sendable {
    private var indexOf = KeyIndex()
    package private(set) var strings: [String] = []

    package init() {}

    package var count: Int { strings.count }

    /// The index of `s`, adding it if new.
    @inline(__always)
    package mutating func intern(_ s: String) -> UInt32 {
        let next = UInt32(truncatingIfNeeded: strings.count)
        let known = strings // a reference, not a copy: read by the key comparison below
        let i = indexOf.slot(tag: KeyIndex.tag(s), isKey: { IdBytes.equal(known[Int($0)], s) }, orInsert: { next })
        if i == next { strings.append(s) } // existing keys all have slots below `next`
        return i
    }

    /// The index of the id whose UTF-8 bytes are `bytes` (valid UTF-8),
    /// adding it if new: a `String` is made only for a new id.
    @inline(__always)
    package mutating func intern(validUTF8 bytes: UnsafeRawBufferPointer) -> UInt32 {
        // Keys read in place (no copy of the array reference, so no retain per call).
        intern(validUTF8: bytes, tag: indexOf.tag(bytes: bytes))
    }

    /// Interns a batch of ids given as valid UTF-8 bytes, `numbers[k]` the
    /// index of `ids[k]` (`numbers.count >= ids.count`), as `intern(validUTF8:)`
    /// one by one would. First asks the cache for every id's bucket, then
    /// for the key each bucket names, so the misses of the batch overlap
    /// instead of coming two per id one after another: a checkpoint restore
    /// interns ten recent items per user entry, and with the store's fresh
    /// state streaming through the cache both loads missed nearly every time
    /// (`freshet bench restore`: interning was ~60% of the restore).
    package mutating func intern(validUTF8 ids: UnsafeBufferPointer<UnsafeRawBufferPointer>,
                                 into numbers: UnsafeMutableBufferPointer<UInt32>) {
        precondition(numbers.count >= ids.count, "one number per id")
        strings.withUnsafeBufferPointer { known in
            indexOf.prefetch(ids, tags: numbers) { slot in
                Int(slot) < known.count ? known.baseAddress.map { UnsafeRawPointer($0 + Int(slot)) } : nil
            }
        }
        for k in ids.indices { numbers[k] = intern(validUTF8: ids[k], tag: numbers[k]) }
    }

    /// `intern(validUTF8:)` with the bytes' tag already computed.
    @inline(__always)
    private mutating func intern(validUTF8 bytes: UnsafeRawBufferPointer, tag: UInt32) -> UInt32 {
        let next = UInt32(truncatingIfNeeded: strings.count)
        let i = strings.withUnsafeBufferPointer { known in
            indexOf.slot(tag: tag, isKey: { IdBytes.equal(known[Int($0)], bytes: bytes) }, orInsert: { next })
        }
        if i == next { strings.append(BorrowedByteReader.string(validUTF8: bytes)) }
        return i
    }

    package func index(of s: String) -> UInt32? { indexOf.slot(tag: KeyIndex.tag(s)) { IdBytes.equal(strings[Int($0)], s) } }

    @inline(__always)
    package subscript(_ i: UInt32) -> String { strings[Int(i)] }

    package mutating func removeAll() {
        indexOf.removeAll()
        strings.removeAll()
    }
}
