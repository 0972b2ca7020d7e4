import FreshetCore

/// Drops repartitioned records that were produced twice.
///
/// After a crash an upstream source task replays from its checkpoint and
/// produces again the records it had already sent. Records of one source
/// partition reach a repartition partition in (offset, subIndex) order (one
/// producer per source partition at a time, idempotent, so order is kept), so
/// remembering the highest position seen per source partition is enough. A
/// zombie owner's records are identical to the new owner's (same input, same
/// deterministic code), so whichever copy arrives first is the one kept.
package struct DuplicateFilter: Sendable, Equatable {
    package struct Source: Hashable, Sendable {
        package var topic: UInt8
        package var partition: Int32
    }

    package private(set) var highest: [Source: Position] = [:]

    package struct Position: Sendable, Equatable, Comparable {
        package var offset: Int64
        package var subIndex: UInt32
        package static func < (a: Position, b: Position) -> Bool {
            a.offset != b.offset ? a.offset < b.offset : a.subIndex < b.subIndex
        }
    }

    package init() {}

    /// True if the record is new (and remembers it); false for a duplicate.
    package mutating func admit(_ origin: RecordOrigin) -> Bool {
        let source = Source(topic: origin.sourceTopic, partition: origin.partition)
        let position = Position(offset: origin.offset, subIndex: origin.subIndex)
        if let seen = highest[source], position <= seen { return false }
        highest[source] = position
        return true
    }

    package mutating func restore(_ source: Source, _ position: Position) {
        highest[source] = position
    }
}

extension TaskCheckpoint.SourceProgress {
    /// Per source partition (sorted by topic code, then partition), the last
    /// record the filter admitted and the source's watermark, for a repartition-fed task's checkpoint.
    package static func of(_ filter: DuplicateFilter,
                          watermarks: [DuplicateFilter.Source: EventTimeMs]) -> [TaskCheckpoint.SourceProgress] {
        let sources = Set(filter.highest.keys).union(watermarks.keys)
        return sources.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }.map { source in
            TaskCheckpoint.SourceProgress(source: source, lastAdmitted: filter.highest[source],
                                          watermarkMs: watermarks[source])
        }
    }
}
