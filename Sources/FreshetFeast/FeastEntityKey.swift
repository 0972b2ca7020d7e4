/// Redis keys of Feast's online store: the entity key in serialization
/// version 3 followed by the project name (FEAST_LAYOUT.md section 2).
///
/// Layout, every integer a u32 little-endian, no separators:
/// `N`, then for each join-key name (sorted by UTF-8 bytes) `2 len name`,
/// then for each value in the same order `type len bytes`, then `utf8(project)`.
/// The key holds NUL bytes: send it as a binary argument, never as a C string.
package enum FeastEntityKey {
    /// `ValueType` numbers of the join-key values Freshet writes.
    package static let stringType: UInt32 = 2

    /// The key of an entity whose join keys are all strings (Freshet's ids).
    /// - Parameters:
    ///   - joinKeys: (join-key name, value) pairs in any order; values are taken
    ///     as their UTF-8 bytes, unnormalised (two ids are equal only if their bytes are).
    ///   - project: the Feast project name, appended as a plain suffix.
    package static func encode(stringJoinKeys joinKeys: [(name: String, value: String)], project: String) -> [UInt8] {
        // Byte order, not String's `<` (which compares by canonical equivalence).
        let sorted = joinKeys.map { (name: Array($0.name.utf8), value: Array($0.value.utf8)) }
            .sorted { $0.name.lexicographicallyPrecedes($1.name) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 + sorted.reduce(0) { $0 + 16 + $1.name.count + $1.value.count } + project.utf8.count)
        appendU32(UInt32(sorted.count), to: &bytes)
        for key in sorted {
            appendU32(stringType, to: &bytes)
            appendU32(UInt32(key.name.count), to: &bytes)
            bytes.append(contentsOf: key.name)
        }
        for key in sorted {
            appendU32(stringType, to: &bytes)
            appendU32(UInt32(key.value.count), to: &bytes)
            bytes.append(contentsOf: key.value)
        }
        bytes.append(contentsOf: project.utf8)
        return bytes
    }

    /// The key of a single-entity row: what Freshet's user and item rows use.
    package static func encode(joinKey name: String, value: String, project: String) -> [UInt8] {
        encode(stringJoinKeys: [(name, value)], project: project)
    }

    /// The (join-key name, value) of a key `encode(joinKey:value:project:)`
    /// made; nil for any other bytes (another project, several join keys, a
    /// value that is not a string, lengths past the end, invalid UTF-8).
    package static func decodeSingleString(_ key: [UInt8], project: String) -> (joinKey: String, value: String)? {
        var at = 0
        func u32() -> UInt32? {
            guard at + 4 <= key.count else { return nil }
            defer { at += 4 }
            return UInt32(key[at]) | UInt32(key[at + 1]) << 8 | UInt32(key[at + 2]) << 16 | UInt32(key[at + 3]) << 24
        }
        func text() -> String? {
            guard u32() == stringType, let length = u32().map(Int.init), at + length <= key.count else { return nil }
            defer { at += length }
            return String(validating: key[at..<at + length], as: UTF8.self)
        }
        guard u32() == 1, let name = text(), let value = text(),
              key[at...].elementsEqual(project.utf8) else { return nil }
        return (name, value)
    }

    static func appendU32(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes.append(UInt8(truncatingIfNeeded: value))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
    }
}

/// Hash field names of Feast's online store (FEAST_LAYOUT.md section 3).
package enum FeastFieldName {
    /// The 4-byte field of feature `feature` of view `view`:
    /// murmur3_x86_32(utf8("view:feature"), seed 0) as u32 little-endian.
    package static func feature(view: String, feature: String) -> [UInt8] {
        let hash = Murmur3.x86_32(Array("\(view):\(feature)".utf8))
        var bytes: [UInt8] = []
        FeastEntityKey.appendU32(hash, to: &bytes)
        return bytes
    }

    /// The event-time field of a view: the literal `_ts:<view>` (not hashed).
    package static func timestamp(view: String) -> [UInt8] { Array("_ts:\(view)".utf8) }
}
