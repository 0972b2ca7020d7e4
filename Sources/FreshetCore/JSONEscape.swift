/// Writes JSON string literals (RFC 8259): the one escaper of the project,
/// for the features Redis serves (`recent_items_50`), the training examples'
/// JSON and the generators' events. `"` and `\` are escaped, `\n` `\r` `\t`
/// by name, other control characters as `\u00XX` (lowercase hex); non-ASCII
/// UTF-8 passes through unchanged.
public enum JSONEscape {
    /// Appends `s` as a JSON string literal, quotes included.
    @inlinable
    public static func appendString(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { appendString(utf8: $0, to: &out) }
    }

    /// Appends UTF-8 `bytes` as a JSON string literal, quotes included. Ids
    /// rarely need escaping: those that do not are copied in one append (no
    /// per-byte work, no allocation).
    @inlinable
    public static func appendString(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(contentsOf: bytes)
            out.append(UInt8(ascii: "\""))
            return
        }
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\\"))
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "u"))
                out.append(UInt8(ascii: "0")); out.append(UInt8(ascii: "0"))
                out.append(hexDigit(b >> 4)); out.append(hexDigit(b & 0xF))
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    @inlinable @inline(__always)
    static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + v - 10 }
}
