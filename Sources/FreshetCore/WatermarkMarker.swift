/// A source task's watermark, broadcast to every partition of a repartition topic
/// so the downstream task can take the minimum over all source partitions.
public struct WatermarkMarker: Sendable, Equatable {
    public var sourceTopic: UInt8
    public var sourcePartition: Int32
    /// nil while the source has seen no event yet.
    public var watermarkMs: EventTimeMs?
    /// The source partition reached its end in a bounded run.
    public var finished: Bool

    public init(sourceTopic: UInt8, sourcePartition: Int32, watermarkMs: EventTimeMs?, finished: Bool = false) {
        self.sourceTopic = sourceTopic
        self.sourcePartition = sourcePartition
        self.watermarkMs = watermarkMs
        self.finished = finished
    }
}
