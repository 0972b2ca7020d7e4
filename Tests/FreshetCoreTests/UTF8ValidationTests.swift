import XCTest
@testable import FreshetCore

final class UTF8ValidationTests: XCTestCase {
    /// `firstInvalidOffset` skips ASCII 32 and 8 bytes at a time and settles
    /// a short ASCII end with one overlapping word; checked against a byte
    /// at a time reading of the same rules with a valid or invalid sequence
    /// at every offset of ASCII inputs 0-80 bytes long, alone or after an
    /// earlier multi-byte character (so runs start off word boundaries).
    func testFirstInvalidOffsetMatchesAByteAtATimeReading() {
        let fragments: [[UInt8]] = [
            [], [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80], [0x80], [0xFF], [0xC0, 0x80], [0xC3],
            [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x9F, 0x98], [0xF5],
        ]
        var checked = 0
        for length in 0...80 {
            for at in 0...length {
                for fragment in fragments {
                    for lead in [[], [0xC3, 0xA9] as [UInt8]] {
                        var bytes = lead + Array(repeating: UInt8(ascii: "a"), count: length)
                        bytes.insert(contentsOf: fragment, at: lead.count + at)
                        let got = bytes.withUnsafeBytes { UTF8Validation.firstInvalidOffset($0) }
                        XCTAssertEqual(got, Self.referenceFirstInvalidOffset(bytes), "\(bytes)")
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 90_000)
    }

    /// RFC 3629 one byte at a time (no word steps).
    static func referenceFirstInvalidOffset(_ b: [UInt8]) -> Int? {
        func continuation(_ i: Int) -> Bool { i < b.count && b[i] & 0xC0 == 0x80 }
        var i = 0
        while i < b.count {
            let b0 = b[i]
            if b0 < 0x80 { i += 1; continue }
            if b0 < 0xC2 { return i }
            if b0 < 0xE0 {
                guard continuation(i + 1) else { return i }
                i += 2
            } else if b0 < 0xF0 {
                guard i + 2 < b.count else { return i }
                let lo: UInt8 = b0 == 0xE0 ? 0xA0 : 0x80
                let hi: UInt8 = b0 == 0xED ? 0x9F : 0xBF
                guard b[i + 1] >= lo, b[i + 1] <= hi, continuation(i + 2) else { return i }
                i += 3
            } else if b0 < 0xF5 {
                guard i + 3 < b.count else { return i }
                let lo: UInt8 = b0 == 0xF0 ? 0x90 : 0x80
                let hi: UInt8 = b0 == 0xF4 ? 0x8F : 0xBF
                guard b[i + 1] >= lo, b[i + 1] <= hi, continuation(i + 2), continuation(i + 3) else { return i }
                i += 4
            } else {
                return i
            }
        }
        return nil
    }
}
