/// Unescaping of JSON string content that `JSONScanner` already validated
/// (escapes well-formed, surrogates paired), so this never fails.
enum JSONUnescape {
    static func unescape(_ raw: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        unescape(raw, appendingTo: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the unescaped UTF-8 bytes of `raw` to `out` (the byte form of
    /// `unescape(_:)`, for decoders that keep ids as bytes).
    static func unescape(_ raw: UnsafeRawBufferPointer, appendingTo out: inout [UInt8]) {
        out.reserveCapacity(out.count + raw.count)
        var i = 0
        let n = raw.count
        while i < n {
            let b = raw[i]
            guard b == UInt8(ascii: "\\"), i &+ 1 < n else { out.append(b); i &+= 1; continue }
            let e = raw[i &+ 1]
            i &+= 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(raw, i)
                i &+= 4
                if scalar >= 0xD800 && scalar <= 0xDBFF && i &+ 6 <= n {
                    let low = hex4(raw, i &+ 2)
                    scalar = 0x10000 &+ ((scalar &- 0xD800) << 10) &+ (low &- 0xDC00)
                    i &+= 6
                }
                appendUTF8(scalar, to: &out)
            default: out.append(e) // '"', '\\', '/'
            }
        }
    }

    private static func hex4(_ raw: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 {
            let b = raw[at &+ k]
            let d: UInt8 = b <= UInt8(ascii: "9") ? b &- UInt8(ascii: "0")
                : (b | 0x20) &- UInt8(ascii: "a") &+ 10
            v = v << 4 | UInt32(d)
        }
        return v
    }

    static func appendUTF8(_ s: UInt32, to out: inout [UInt8]) {
        switch s {
        case 0..<0x80:
            out.append(UInt8(s))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (s >> 6)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (s >> 12)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (s >> 18)))
            out.append(UInt8(0x80 | ((s >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        }
    }
}
