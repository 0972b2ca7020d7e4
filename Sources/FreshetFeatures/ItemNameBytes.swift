import FreshetCore

/// The UTF-8 bytes of every item id a `StringInterner` holds, back to back in
/// intern order, with a flag for ids that need JSON escaping.
///
/// The flush renders `recent_items_50` (up to 50 ids per changed user) and a
/// checkpoint writes every changed user's ids: copying each id's bytes from
/// here costs one `memcpy`, where reading it from the interner's `String`
/// (a copy of the string, its UTF-8 view, an escape scan) cost several times
/// that. About `id length + 4` bytes per interned item.
struct ItemNameBytes {
    private var bytes: [UInt8] = []
    /// For item k: the end of its bytes in `bytes` (its start is item k−1's
    /// end), with `escapeBit` set when a JSON literal of it needs escapes.
    private var ends: [UInt32] = []
    private static let escapeBit: UInt32 = 1 << 31

    var count: Int { ends.count }

    /// Appends the ids interned since the last call (the interner only grows;
    /// after its `removeAll`, call `removeAll` here too).
    @inline(__always)
    mutating func sync(with names: StringInterner) {
        if ends.count < names.count { append(from: names) }
    }

    private mutating func append(from names: StringInterner) {
        while ends.count < names.count {
            var id = names[UInt32(ends.count)]
            id.withUTF8 { utf8 in
                bytes.append(contentsOf: utf8)
                precondition(bytes.count < Int(Self.escapeBit), "item name bytes exceed 2 GiB")
                let plain = !utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
                ends.append(UInt32(bytes.count) | (plain ? 0 : Self.escapeBit))
            }
        }
    }

    mutating func removeAll() {
        bytes.removeAll()
        ends.removeAll()
    }

    /// Calls `body` with a view of every id's bytes, valid during the call:
    /// a loop over many ids (a flush's users) reads them without touching
    /// the arrays' headers (a retain, a release and a bounds check per id).
    @inline(__always)
    func withView(_ body: (View) -> Void) {
        ends.withUnsafeBufferPointer { ends in
            bytes.withUnsafeBytes { bytes in body(View(ends: ends, bytes: bytes)) }
        }
    }

    /// Read-only access to the ids' bytes (`withView`).
    struct View {
        let ends: UnsafeBufferPointer<UInt32>
        let bytes: UnsafeRawBufferPointer

        /// Item `k`'s bytes, and whether a JSON string of them needs escapes.
        @inline(__always)
        func id(_ k: UInt32) -> (bytes: UnsafeRawBufferPointer, needsEscape: Bool) {
            let (start, end, needsEscape) = span(k)
            return (UnsafeRawBufferPointer(rebasing: bytes[start..<end]), needsEscape)
        }

        /// Item `k`'s bytes as `bytes[start..<end]`, and its escape flag.
        @inline(__always)
        private func span(_ k: UInt32) -> (start: Int, end: Int, needsEscape: Bool) {
            let i = Int(k)
            let start = i == 0 ? 0 : Int(ends[i &- 1] & ~ItemNameBytes.escapeBit)
            let end = ends[i]
            return (start, Int(end & ~ItemNameBytes.escapeBit), end & ItemNameBytes.escapeBit != 0)
        }

        /// Bytes `copy(_:to:)` may write past an id's end: one 16-byte block.
        static let copySlack = MemoryLayout<SIMD16<UInt8>>.size

        /// Copies item `k`'s bytes to `destination` and returns their count.
        /// `destination` must have room for the count plus `copySlack` bytes:
        /// an id of at most 16 bytes (most are) is moved as one 16-byte load
        /// and store (the bytes after it, read from the next ids and written
        /// past its end, are overwritten or ignored by the caller), not by a
        /// `memcpy` call: a flush copies ~50 ids per changed user.
        @inline(__always)
        func copy(_ k: UInt32, to destination: UnsafeMutableRawPointer) -> Int {
            let (start, end, _) = span(k)
            let count = end &- start
            guard let base = bytes.baseAddress else { return 0 }
            if count <= Self.copySlack && start &+ Self.copySlack <= bytes.count {
                destination.storeBytes(of: (base + start).loadUnaligned(as: SIMD16<UInt8>.self), as: SIMD16<UInt8>.self)
            } else {
                destination.copyMemory(from: base + start, byteCount: count)
            }
            return count
        }
    }
}
