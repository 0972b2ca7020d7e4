import FreshetCore
import FreshetFeast

/// A user or an item whose Redis key Redis refused for good (e.g. `WRONGTYPE`:
/// another writer keeps a string under `item:X`). Only changed entities are
/// written, so once the operator removes the foreign key nothing would write
/// the entity again until it changes: a slow item's features stayed missing
/// for good, also after a rerun. The engine keeps each task's refused
/// entities, writes them in full again at every checkpoint until Redis takes
/// them, and records them in the task's checkpoint (`refused` field), so the
/// next owner retries them too (docs/OPERATIONS.md, "Redis faults").
package enum RefusedEntity: Hashable, Sendable {
    case user(String)
    case item(String)

    /// The entity a refused key names: a Freshet `user:`/`item:` hash or a
    /// Feast row of the user or item view; nil for any other key (`trending`
    /// has its own rewrite; a checkpoint key fails its checkpoint).
    package static func named(by key: [UInt8], keys: RedisKeys, feast: FeastRows?) -> RefusedEntity? {
        if let id = Self.suffix(of: key, after: keys.userPrefix) { return .user(id) }
        if let id = Self.suffix(of: key, after: keys.itemPrefix) { return .item(id) }
        return feast?.entity(ofKey: key)
    }

    private static func suffix(of key: [UInt8], after prefix: String) -> String? {
        let prefixBytes = Array(prefix.utf8)
        guard key.count > prefixBytes.count, key.starts(with: prefixBytes) else { return nil }
        return String(validating: key[prefixBytes.count...], as: UTF8.self)
    }

    /// The `refused` checkpoint field: a varint count, then per entity its
    /// kind (0 user, 1 item) and its id as length-prefixed UTF-8.
    package static func encode(_ entities: Set<RefusedEntity>) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(varint: UInt64(entities.count))
        for entity in entities.sorted(by: { $0.sortKey < $1.sortKey }) {
            switch entity {
            case .user(let id):
                writer.write(varint: 0)
                writer.write(string: id)
            case .item(let id):
                writer.write(varint: 1)
                writer.write(string: id)
            }
        }
        return writer.bytes
    }

    /// Reads `encode`'s bytes.
    /// - Throws: `CodecError` for truncated bytes or an unknown kind.
    package static func decode(_ bytes: [UInt8]) throws(CodecError) -> Set<RefusedEntity> {
        var reader = ByteReader(bytes)
        let count = try reader.readVarint("refused entity count")
        var entities = Set<RefusedEntity>()
        for _ in 0..<count {
            let kind = try reader.readVarint("refused entity kind")
            let id = try reader.readString("refused entity id")
            switch kind {
            case 0: entities.insert(.user(id))
            case 1: entities.insert(.item(id))
            default: throw CodecError(.invalidTag, "refused entity kind \(kind)")
            }
        }
        return entities
    }

    private var sortKey: String {
        switch self {
        case .user(let id): "u" + id
        case .item(let id): "i" + id
        }
    }
}
