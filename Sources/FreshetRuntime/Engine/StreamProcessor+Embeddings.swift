import FreshetCore
import FreshetEmbeddings
import FreshetFeast

extension StreamProcessor {
    /// Writes the user rows touched since the last sync (trained rows and
    /// pseudo-users) and deletes the fields of rows that expired.
    func renderUserEmbeddings(_ side: UserEmbeddingSide, watermark: EventTimeMs?, into write: inout FencedWrite) {
        let field = topology.embeddings.fieldName
        let feast = renderer.feast
        let feastField = feast?.userEmbeddingField
        for (id, vector, pseudo) in side.takeTouched() {
            let blob = EmbeddingBlob.encode(vector)
            if renderer.freshetHashes {
                write.hashSet(keys.user(id), [(field, blob), ("embedding_kind", Array((pseudo ? "pseudo" : "trained").utf8))])
            }
            if let feast, let feastField {
                write.hashSet(rawKey: feast.userKey(id), [(feastField, FeastValue.floatList(float32LittleEndian: blob))])
            }
        }
        if let watermark {
            let expired = side.trainer.evictExpired(now: watermark).users
            exchange.users.remove(expired)
            for id in expired {
                if renderer.freshetHashes {
                    write.hashDelete(keys.user(id), field: field)
                    write.hashDelete(keys.user(id), field: "embedding_kind")
                }
                if let feast, let feastField { write.hashDelete(rawKey: feast.userKey(id), field: feastField) }
            }
        }
    }

    /// Writes the item rows touched since the last sync; deletes expired rows' fields.
    func renderItemEmbeddings(_ side: ItemEmbeddingSide, watermark: EventTimeMs?, into write: inout FencedWrite) {
        let field = topology.embeddings.fieldName
        let feast = renderer.feast
        let feastField = feast?.itemEmbeddingField
        for (id, vector) in side.takeTouched() {
            let blob = EmbeddingBlob.encode(vector)
            if renderer.freshetHashes { write.hashSet(keys.item(id), [(field, blob)]) }
            if let feast, let feastField {
                write.hashSet(rawKey: feast.itemKey(id), [(feastField, FeastValue.floatList(float32LittleEndian: blob))])
            }
        }
        if let watermark {
            for id in side.trainer.evictExpired(now: watermark).items {
                if renderer.freshetHashes { write.hashDelete(keys.item(id), field: field) }
                if let feast, let feastField { write.hashDelete(rawKey: feast.itemKey(id), field: feastField) }
            }
        }
    }

    func makeUserEmbeddingSide() -> UserEmbeddingSide? {
        topology.embeddings.enabled ? UserEmbeddingSide(settings: topology.embeddings, exchange: exchange) : nil
    }

    func makeItemEmbeddingSide() -> ItemEmbeddingSide? {
        topology.embeddings.enabled ? ItemEmbeddingSide(settings: topology.embeddings, exchange: exchange) : nil
    }

    /// Embedding rows changed since the last checkpoint, encoded.
    func changedEmbeddingRows(for id: TaskId) -> [(String, [UInt8])] {
        switch id.stage {
        case .interactions, .impressions:
            guard let (tp, _) = position(of: id), let side = sourceTasks[tp]?.userEmbeddings else { return [] }
            defer { side.changedForCheckpoint.removeAll(keepingCapacity: true) }
            return side.changedForCheckpoint.compactMap { user in side.trainer.users.encodeRow(user).map { (user, $0) } }
        case .users:
            guard let side = userTasks[id.partition]?.userEmbeddings else { return [] }
            defer { side.changedForCheckpoint.removeAll(keepingCapacity: true) }
            return side.changedForCheckpoint.compactMap { user in side.trainer.users.encodeRow(user).map { (user, $0) } }
        case .items:
            guard let side = itemTasks[id.partition]?.embeddings else { return [] }
            defer { side.changedForCheckpoint.removeAll(keepingCapacity: true) }
            return side.changedForCheckpoint.compactMap { item in side.trainer.items.encodeRow(item).map { (item, $0) } }
        }
    }

    /// Restores a task's embedding rows from its checkpoint.
    func restoreEmbeddingRows(_ id: TaskId, into table: EmbeddingTable) throws {
        try scanHash(keys.checkpointEmbeddings(id)) { key, bytes in try table.restoreRow(key, from: bytes) }
    }
}
