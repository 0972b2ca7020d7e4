import FreshetCore

/// Appends JSON text as bytes without Foundation. Only what the generators need.
struct SyntheticJSONWriter {
    var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    @inline(__always)
    mutating func raw(_ s: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    @inline(__always)
    mutating func byte(_ b: UInt8) { bytes.append(b) }

    mutating func int(_ v: Int64) {
        if v < 0 {
            bytes.append(UInt8(ascii: "-"))
            // Magnitude as UInt64 so Int64.min works.
            uint(0 &- UInt64(bitPattern: v))
        } else {
            uint(UInt64(v))
        }
    }

    mutating func uint(_ v: UInt64) {
        let start = bytes.count
        var x = v
        repeat {
            bytes.append(UInt8(ascii: "0") &+ UInt8(x % 10))
            x /= 10
        } while x > 0
        bytes[start...].reverse()
    }

    /// A JSON string literal, escaped (`JSONEscape`).
    mutating func string(_ s: String) { JSONEscape.appendString(s, to: &bytes) }

    /// An id: quoted when textual, bare when the id is an integer.
    mutating func id(_ s: String, asInteger: Bool) {
        if asInteger { bytes.append(contentsOf: s.utf8) } else { string(s) }
    }
}
