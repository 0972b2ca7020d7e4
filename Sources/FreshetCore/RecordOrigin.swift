/// Where a repartitioned record came from. Per (sourceTopic, partition) records
/// arrive downstream in (offset, subIndex) order, so a receiver deduplicates
/// records produced twice after a crash by remembering the last origin it applied.
/// Public, with its fields, because `ImpressionItemsRecord.withEncoded` (an
/// inlined hot-path helper, see docs/ARCHITECTURE.md "Modules") takes one.
public struct RecordOrigin: Sendable, Equatable, Hashable, Comparable {
    /// Source topic code: `interactions` or `impressions`.
    public var sourceTopic: UInt8
    public var partition: Int32
    public var offset: Int64
    /// Index of the record among those derived from one source message
    /// (an impression yields one item event per shown item). 32 bits: a list
    /// is bounded by the message size (4 GiB at most), never by this width.
    public var subIndex: UInt32

    package static let interactionsTopic: UInt8 = 0
    package static let impressionsTopic: UInt8 = 1

    package init(sourceTopic: UInt8, partition: Int32, offset: Int64, subIndex: UInt32 = 0) {
        self.sourceTopic = sourceTopic
        self.partition = partition
        self.offset = offset
        self.subIndex = subIndex
    }

    /// Orders by (offset, subIndex) — only meaningful within one (sourceTopic, partition).
    public static func < (a: RecordOrigin, b: RecordOrigin) -> Bool {
        (a.offset, a.subIndex) < (b.offset, b.subIndex)
    }
}
