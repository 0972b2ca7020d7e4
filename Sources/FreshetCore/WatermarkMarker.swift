/// A source task's watermark, broadcast to every partition of a repartition topic
/// so the downstream task can take the minimum over all source partitions.
package struct WatermarkMarker: Sendable, Equatable {
    package var sourceTopic: UInt8
    package var sourcePartition: Int32
    /// nil while the source has seen no event yet.
    package var watermarkMs: EventTimeMs?
    /// The source partition reached its end in a bounded run.
    package var finished: Bool

    package init(sourceTopic: UInt8, sourcePartition: Int32, watermarkMs: EventTimeMs?, finished: Bool = false) {
        self.sourceTopic = sourceTopic
        self.sourcePartition = sourcePartition
        self.watermarkMs = watermarkMs
        self.finished = finished
    }
}
