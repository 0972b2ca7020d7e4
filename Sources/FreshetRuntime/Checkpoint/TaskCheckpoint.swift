import FreshetCore

/// What a checkpoint records besides the keyed state: where the task's input
/// stands and how far event time has progressed. Saved atomically with the
/// state delta (Flink's principle: state and source offsets together).
///
/// Stored in the `...:ckpt:<task>:meta` hash, one field each. `version` lets a
/// later release read this one or refuse it with a clear error.
package struct TaskCheckpoint: Sendable, Equatable {
    package static let formatVersion = 1

    package var nextOffset: Int64?
    /// Source tasks: the largest event time seen (rebuilds the watermark).
    /// Item tasks: the task's watermark.
    package var eventTimeMs: EventTimeMs?
    /// Repartition-fed tasks: per source partition, the last admitted record and watermark.
    package var sources: [SourceProgress] = []
    package var epoch: Int64 = 0
    package var writtenAtMs: Int64 = 0
    package var entries: Int = 0
    /// Store-level state that entries depend on (item stores: their watermark), restored first.
    package var storeMetadata: [UInt8]?
    /// The task that joins the examples (a counts task; an item task when
    /// the input is not keyed by user): the join's open windows and
    /// tombstones (`ImpressionJoiner.encode`). (`join_features` and
    /// `join_held`, the item tasks' state when they joined the counts
    /// stage's copies, are no longer written or read.)
    package var joinState: [UInt8]?
    /// Item tasks with the examples topic on: impressions whose item features
    /// wait for the watermark (with the counts stage: before they are sent
    /// there) and the events applied ahead of it (`PendingImpressionFeatures.encode`).
    package var joinPending: [UInt8]?
    /// Fields of an earlier release's item tasks that held examples' join
    /// state (`join_features`, `join_held`, when the item tasks joined the
    /// counts stage's copies) and hold entries: this release cannot take it
    /// over (`ItemTask.restore` refuses). Read only, never written.
    package var retiredJoinFields: [String] = []
    /// Users or items whose key Redis refused and has not taken since: the
    /// next owner writes them in full at its first checkpoint (`RefusedEntity`).
    /// Always written (empty when none), so a taken key leaves the list.
    package var refused: Set<RefusedEntity> = []

    package struct SourceProgress: Sendable, Equatable {
        package var source: DuplicateFilter.Source
        package var lastAdmitted: DuplicateFilter.Position?
        package var watermarkMs: EventTimeMs?
    }

    package init() {}

    package func fields() -> [(String, [UInt8])] {
        var writer = ByteWriter()
        writer.write(varint: UInt64(sources.count))
        for progress in sources {
            writer.write(varint: UInt64(progress.source.topic))
            writer.write(zigzag: Int64(progress.source.partition))
            if let admitted = progress.lastAdmitted {
                writer.write(varint: 1)
                writer.write(zigzag: admitted.offset)
                writer.write(varint: UInt64(admitted.subIndex))
            } else {
                writer.write(varint: 0)
            }
            if let wm = progress.watermarkMs {
                writer.write(varint: 1)
                writer.write(zigzag: wm)
            } else {
                writer.write(varint: 0)
            }
        }
        var result: [(String, [UInt8])] = [
            ("version", Array(String(Self.formatVersion).utf8)),
            ("epoch", Array(String(epoch).utf8)),
            ("written_ms", Array(String(writtenAtMs).utf8)),
            ("entries", Array(String(entries).utf8)),
            ("sources", writer.bytes),
        ]
        if let storeMetadata { result.append(("store_meta", storeMetadata)) }
        if let joinState { result.append(("join_state", joinState)) }
        if let joinPending { result.append(("join_pending", joinPending)) }
        result.append(("refused", RefusedEntity.encode(refused)))
        result.append(("next_offset", Array((nextOffset.map(String.init) ?? "").utf8)))
        result.append(("event_time_ms", Array((eventTimeMs.map(String.init) ?? "").utf8)))
        return result
    }

    package static func parse(_ fields: [String: [UInt8]], task: TaskId) throws(CheckpointError) -> TaskCheckpoint {
        func text(_ name: String) -> String? { fields[name].map { String(decoding: $0, as: UTF8.self) } }
        guard let versionText = text("version"), let version = Int(versionText) else {
            throw CheckpointError(task: task, message: "checkpoint has no readable version field")
        }
        guard version <= formatVersion else {
            throw CheckpointError(task: task, message: "checkpoint format version \(version) is newer than this release supports (\(formatVersion)); upgrade Freshet or delete the checkpoint keys to rebuild from the topics")
        }
        var checkpoint = TaskCheckpoint()
        checkpoint.nextOffset = text("next_offset").flatMap { Int64($0) }
        checkpoint.eventTimeMs = text("event_time_ms").flatMap { Int64($0) }
        checkpoint.epoch = text("epoch").flatMap { Int64($0) } ?? 0
        checkpoint.writtenAtMs = text("written_ms").flatMap { Int64($0) } ?? 0
        checkpoint.entries = text("entries").flatMap { Int($0) } ?? 0
        checkpoint.storeMetadata = fields["store_meta"]
        checkpoint.joinState = fields["join_state"]
        checkpoint.joinPending = fields["join_pending"]
        checkpoint.retiredJoinFields = ["join_features", "join_held"].filter { fields[$0].map(Self.holdsEntries) ?? false }
        if let bytes = fields["refused"], !bytes.isEmpty {
            do {
                checkpoint.refused = try RefusedEntity.decode(bytes)
            } catch {
                throw CheckpointError(task: task, message: "checkpoint refused field is corrupt: \(error)")
            }
        }
        if let bytes = fields["sources"], !bytes.isEmpty {
            do {
                var reader = ByteReader(bytes)
                let count = try reader.readVarint("sources count")
                for _ in 0..<count {
                    let topic = UInt8(truncatingIfNeeded: try reader.readVarint("source topic"))
                    let partition = Int32(truncatingIfNeeded: try reader.readZigzag("source partition"))
                    var admitted: DuplicateFilter.Position?
                    if try reader.readVarint("admitted flag") == 1 {
                        let offset = try reader.readZigzag("admitted offset")
                        // A varint: checkpoints written when sub-indices were 16 bits read the same.
                        let raw = try reader.readVarint("admitted sub-index")
                        guard let sub = UInt32(exactly: raw) else {
                            throw CheckpointError(task: task, message: "checkpoint sources field has sub-index \(raw) above 32 bits")
                        }
                        admitted = DuplicateFilter.Position(offset: offset, subIndex: sub)
                    }
                    var watermark: EventTimeMs?
                    if try reader.readVarint("watermark flag") == 1 { watermark = try reader.readZigzag("watermark") }
                    checkpoint.sources.append(SourceProgress(source: DuplicateFilter.Source(topic: topic, partition: partition),
                                                             lastAdmitted: admitted, watermarkMs: watermark))
                }
            } catch {
                throw CheckpointError(task: task, message: "checkpoint sources field is corrupt: \(error)")
            }
        }
        return checkpoint
    }
}

/// A checkpoint that cannot be written or read, with the task it belongs to.
extension TaskCheckpoint {
    /// Whether a retired join field holds entries: both were a format byte,
    /// then a varint count of entries (0: the single byte 0), then the entries.
    static func holdsEntries(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[1] != 0 }

    /// What to say when a checkpoint holds examples' join state written by an
    /// earlier release, whose join ran elsewhere, which this release cannot
    /// take over without losing those impressions' examples.
    static func retiredJoinStateMessage(_ what: String) -> String {
        "\(what), written by an earlier release that joined the examples in the item tasks; this release joins them in the counts stage and cannot take them over (their examples would be lost): finish the group's run with the release that wrote the checkpoint (a bounded run ends with nothing held), or start a new group"
    }
}

package struct CheckpointError: Error, Sendable, CustomStringConvertible {
    package var task: TaskId
    package var message: String
    package var description: String { "checkpoint of task \(task): \(message)" }
}
