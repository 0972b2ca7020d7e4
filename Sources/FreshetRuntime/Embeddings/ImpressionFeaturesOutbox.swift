import FreshetCore

/// Sends the counts stage the item features the item task evaluated for
/// impressions (`PendingImpressionFeatures`), one record per impression and
/// evaluation: the items of one impression that share this partition are
/// awaited together and evaluated one after another (same known-from time,
/// consecutive arrival), so they go as one `ImpressionFeaturesPart`, the
/// user, time, request id and source position once. Keyed by the user, as
/// the counts stage partitions its input.
///
/// Everything added is sent by `flush`, which the item task calls after each
/// evaluation and before its next watermark marker: the counts stage takes
/// a part as complete once that marker passes it. Processing thread only.
final class ImpressionFeaturesOutbox {
    /// The item task's partition: the parts' sender.
    let partition: Int32
    @exclusivity(unchecked) private var current: ImpressionFeaturesPart?
    @exclusivity(unchecked) private var scratch = ByteWriter(capacity: 256)
    /// Parts sent (gauges and the bench).
    @exclusivity(unchecked) private(set) var partsSent = 0

    init(partition: Int32) {
        self.partition = partition
    }

    /// One evaluated shown item; sends the part collected so far when it is
    /// another impression's. `behindWatermark`: evaluated at arrival, the
    /// task's watermark already past `knownFrom` (`ImpressionFeaturesPart.behindSendersWatermark`).
    func add(_ shown: PendingImpressionFeatures.AwaitedItem, knownFrom: EventTimeMs,
             _ counts: PendingImpressionFeatures.Counts, behindWatermark: Bool = false, output: TaskOutput) {
        let item = ImpressionFeaturesPart.Item(index: shown.source.subIndex, itemId: shown.itemId, position: shown.position,
                                               popularity7d: counts.popularity7d, impressions7d: counts.impressions7d)
        var part = ImpressionFeaturesPart(senderPartition: partition, userId: shown.userId, ts: shown.ts,
                                          requestId: shown.requestId, source: shown.source, knownFrom: knownFrom, items: [])
        part.behindSendersWatermark = behindWatermark
        if let collected = current, collected.isPart(of: part) {
            current?.items.append(item)
            return
        }
        flush(output: output)
        current = part
        current?.items.append(item)
    }

    /// Sends the part being collected, if any.
    func flush(output: TaskOutput) {
        guard let part = current else { return }
        current = nil
        send(part, output: output)
    }

    private func send(_ part: ImpressionFeaturesPart, output: TaskOutput) {
        scratch.bytes.removeAll(keepingCapacity: true)
        part.encode(into: &scratch)
        if scratch.bytes.count <= output.maxRepartitionRecordBytes || part.items.count == 1 {
            // One item: its record from the source task, which fitted, was
            // about as large (the features add a few bytes).
            output.repartition(.counts, key: part.userId, value: scratch.bytes)
            partsSent += 1
            return
        }
        // Too large for one message: item by item (the counts stage merges parts by index).
        for item in part.items {
            var one = part
            one.items = [item]
            send(one, output: output)
        }
    }
}
