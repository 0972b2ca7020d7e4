import FreshetFeast
import FreshetFeatures

/// Freshet's features as rows of Feast's Redis online store (FEAST_LAYOUT.md),
/// ready for `FencedWrite.hashSet(rawKey:_:)`: one hash per entity, keyed by
/// the v3 entity key with the project appended (never with `redis.key_prefix`),
/// murmur3 field names, protobuf `Value` bytes, and `_ts:<view>`.
///
/// Field names are fixed by the configuration, so they are computed once here.
/// Freshet is the only writer: rows are plain HSETs, and `_ts` is information
/// for readers, not a guard. User rows carry `updated_ms` (the latest positive
/// interaction); item rows carry `ItemFeatures.asOfMs`, which moves forward
/// when a pane leaves the window and the counts fall without a new event.
package struct FeastRows: Sendable {
    struct ViewFields: Sendable {
        let joinKey: String
        let timestamp: [UInt8]
        /// Feast field name by Freshet feature; absent = not written to Feast.
        let fields: [String: [UInt8]]

        init(_ view: Topology.Feast.View) {
            joinKey = view.entity
            timestamp = FeastFieldName.timestamp(view: view.name)
            fields = view.features.mapValues { FeastFieldName.feature(view: view.name, feature: $0) }
        }
    }

    package let project: String
    let user: ViewFields
    let item: ViewFields

    package init(_ config: Topology.Feast) {
        project = config.project
        user = ViewFields(config.user)
        item = ViewFields(config.item)
    }

    package func userKey(_ userId: String) -> [UInt8] {
        FeastEntityKey.encode(joinKey: user.joinKey, value: userId, project: project)
    }

    package func itemKey(_ itemId: String) -> [UInt8] {
        FeastEntityKey.encode(joinKey: item.joinKey, value: itemId, project: project)
    }

    /// `_ts` and the mapped user features.
    package func userFields(_ features: UserFeatures) -> [([UInt8], [UInt8])] {
        var fields: [([UInt8], [UInt8])] = [(user.timestamp, FeastValue.timestamp(epochMs: features.updatedMs))]
        if let field = user.fields["recent_items_50"] { fields.append((field, FeastValue.stringList(features.recentItems))) }
        if let field = user.fields["interaction_count"] { fields.append((field, FeastValue.int64(features.interactionCount))) }
        return fields
    }

    /// `_ts` (the counts' as-of time) and the mapped item features.
    package func itemFields(_ features: ItemFeatures) -> [([UInt8], [UInt8])] {
        var fields: [([UInt8], [UInt8])] = [(item.timestamp, FeastValue.timestamp(epochMs: features.asOfMs))]
        if let field = item.fields["popularity_7d"] { fields.append((field, FeastValue.int64(features.popularity7d))) }
        if let field = item.fields["impressions_7d"] { fields.append((field, FeastValue.int64(features.impressions7d))) }
        return fields
    }

    /// Field of the user embedding, nil when the user view does not carry it.
    package var userEmbeddingField: [UInt8]? { user.fields["embedding"] }
    /// Field of the item embedding, nil when the item view does not carry it.
    package var itemEmbeddingField: [UInt8]? { item.fields["embedding"] }
}

extension FeastRows {
    /// The user or item whose row `key` is (`userKey`/`itemKey` read back):
    /// one string join key, the user's or the item's, and this project; nil
    /// for any other key.
    package func entity(ofKey key: [UInt8]) -> RefusedEntity? {
        guard let (joinKey, value) = FeastEntityKey.decodeSingleString(key, project: project) else { return nil }
        if joinKey == user.joinKey { return .user(value) }
        if joinKey == item.joinKey { return .item(value) }
        return nil
    }
}
