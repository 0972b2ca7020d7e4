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
public struct DuplicateFilter: Sendable, Equatable {
    public struct Source: Hashable, Sendable {
        public var topic: UInt8
        public var partition: Int32
    }

    public private(set) var highest: [Source: Position] = [:]

    public struct Position: Sendable, Equatable, Comparable {
        public var offset: Int64
        public var subIndex: UInt32
        public static func < (a: Position, b: Position) -> Bool {
            a.offset != b.offset ? a.offset < b.offset : a.subIndex < b.subIndex
        }
    }

    public init() {}

    /// True if the record is new (and remembers it); false for a duplicate.
    public mutating func admit(_ origin: RecordOrigin) -> Bool {
        let source = Source(topic: origin.sourceTopic, partition: origin.partition)
        let position = Position(offset: origin.offset, subIndex: origin.subIndex)
        if let seen = highest[source], position <= seen { return false }
        highest[source] = position
        return true
    }

    public mutating func restore(_ source: Source, _ position: Position) {
        highest[source] = position
    }
}

extension TaskCheckpoint.SourceProgress {
    /// Per source partition (sorted by topic code, then partition), the last
    /// record the filter admitted and the source's watermark, for a repartition-fed task's checkpoint.
    public static func of(_ filter: DuplicateFilter,
                          watermarks: [DuplicateFilter.Source: EventTimeMs]) -> [TaskCheckpoint.SourceProgress] {
        let sources = Set(filter.highest.keys).union(watermarks.keys)
        return sources.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }.map { source in
            TaskCheckpoint.SourceProgress(source: source, lastAdmitted: filter.highest[source],
                                          watermarkMs: watermarks[source])
        }
    }
}
