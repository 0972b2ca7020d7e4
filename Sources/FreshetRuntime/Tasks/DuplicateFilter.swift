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

    /// The highest position admitted per source partition (for checkpoints).
    package var highest: [Source: Position] { Dictionary(uniqueKeysWithValues: zip(sources, positions)) }

    /// Sources in first-seen order and their highest admitted positions: a
    /// task hears from a handful of source partitions, and records come in
    /// runs from one source (a bundle holds one source partition's records),
    /// so the previous record's entry (`last`) is checked first and most
    /// records cost no search and no hashing.
    private var sources: [Source] = []
    private var positions: [Position] = []
    private var last = 0

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
        let k = index(of: source)
        if k == positions.count {
            sources.append(source)
            positions.append(position)
            return true
        }
        if position <= positions[k] { return false }
        positions[k] = position
        return true
    }

    /// The entry of `source`, or `sources.count` when it has none; remembered in `last`.
    @inline(__always)
    private mutating func index(of source: Source) -> Int {
        if last < sources.count && sources[last] == source { return last }
        let k = sources.firstIndex(of: source) ?? sources.count
        last = k
        return k
    }

    package mutating func restore(_ source: Source, _ position: Position) {
        let k = index(of: source)
        if k == positions.count {
            sources.append(source)
            positions.append(position)
        } else {
            positions[k] = position
        }
    }

    package static func == (a: DuplicateFilter, b: DuplicateFilter) -> Bool { a.highest == b.highest }
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

extension WatermarkMultiplexer where Input == DuplicateFilter.Source {
    /// Applies a marker from an upstream partition (a source, or the counts
    /// stage): its watermark, and, at the end of a bounded run, its end, which
    /// is also added to `finished` (the task's finished inputs).
    mutating func apply(_ marker: WatermarkMarker, nowMs: Int64, finished: inout Set<DuplicateFilter.Source>) {
        let source = DuplicateFilter.Source(topic: marker.sourceTopic, partition: marker.sourcePartition)
        if let watermark = marker.watermarkMs { update(source, watermark: watermark, nowMs: nowMs) }
        if marker.finished {
            markFinished(source)
            finished.insert(source)
        }
    }
}
