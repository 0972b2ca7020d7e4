/// Redis Cluster key-to-slot mapping: `CRC16(key) mod 16384`, where CRC16 is
/// the XMODEM variant (polynomial 0x1021, initial value 0, no reflection) and,
/// when the key holds a hash tag, only the tag is hashed.
///
/// Hash tag: the bytes between the first `{` and the first `}` after it, when
/// there is at least one byte between them (`{user1}.a` and `{user1}.b` share a
/// slot; `{}x` and `x{` hash the whole key). Keys are bytes: Feast keys hold
/// NUL bytes and are hashed unchanged.
package enum ClusterSlot {
    package static let count = 16_384

    /// The slot of `key` (0..<16384).
    package static func of<Key: Collection>(_ key: Key) -> Int where Key.Element == UInt8 {
        Int(crc16(hashedPart(of: key)) & 0x3fff)
    }

    /// The part of `key` that is hashed: its hash tag, or the whole key.
    package static func hashedPart<Key: Collection>(of key: Key) -> Key.SubSequence where Key.Element == UInt8 {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key[...] }
        let afterOpen = key.index(after: open)
        guard let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen else { return key[...] }
        return key[afterOpen..<close]
    }

    /// CRC16/XMODEM of `bytes` (`crc16("123456789") == 0x31c3`).
    package static func crc16<Bytes: Sequence>(_ bytes: Bytes) -> UInt16 where Bytes.Element == UInt8 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
