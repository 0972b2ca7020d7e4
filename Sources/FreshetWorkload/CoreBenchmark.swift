#if canImport(Glibc)
import Glibc
#endif
import FreshetCore
import FreshetFeatures

/// In-process throughput of the dataflow core, no I/O: decoding alone, and
/// decoding plus everything a source task and an item task do per event
/// (user features, item routing, window counts, trending, watermarks).
package enum CoreBenchmark {
    /// Generates `events` synthetic events (excluded from timing), then times
    /// (1) decode only and (2) the full single-threaded pipeline.
    package static func run(events: Int, users: Int, items: Int, seed: UInt64) -> CoreBenchmarkReport {
        let start: EventTimeMs = 1_732_000_000_000
        let span: Int64 = 10 * 86_400_000 // ten days: windows fill and expire
        let config = SyntheticConfig(seed: seed, users: users, items: items, startMs: start, spanMs: span,
                                     outOfOrderMs: 5_000, lateFraction: 0.01, badFraction: 0.001)
        let batch = SyntheticBatch(SyntheticStream(config: config, count: events))
        let now = config.nowMs
        let decoder = EventDecoder()
        let clock = ContinuousClock()
        var sink = 0

        // (1) Decode only.
        var decoded = 0
        let t0 = clock.now
        let c0 = threadCPUSeconds()
        batch.forEach { topic, timestamp, buf in
            if topic == .interactions {
                if let i = try? decoder.decodeInteraction(buf, messageTimestampMs: timestamp, nowMs: now) {
                    decoded += 1
                    sink &+= i.userId.utf8.count
                }
            } else if let m = try? decoder.decodeImpression(buf, messageTimestampMs: timestamp, nowMs: now) {
                decoded += 1
                sink &+= m.itemsShown.count
            }
        }
        let decodeSeconds = seconds(clock.now - t0)
        let decodeCPU = threadCPUSeconds() - c0

        // (2) Full pipeline.
        let userStore = UserFeatureStore()
        let itemStore = ItemFeatureStore()
        var watermark = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)
        var itemEvents = 0
        var bad = 0
        var k = 0
        let t1 = clock.now
        let c1 = threadCPUSeconds()
        batch.forEach { topic, timestamp, buf in
            k &+= 1
            if topic == .interactions {
                if let i = try? decoder.decodeInteraction(buf, messageTimestampMs: timestamp, nowMs: now) {
                    watermark.observe(i.ts)
                    userStore.apply(i)
                    // Both stages in one thread: the item features take the
                    // event's fields directly (routing builds `ItemEvent`s only
                    // to encode repartition records; the source stage times that).
                    itemStore.apply(itemId: i.itemId, ts: i.ts, kind: .interaction(i.action, dwellMs: i.dwellMs),
                                    watermark: nil)
                    itemEvents &+= 1
                } else {
                    bad &+= 1
                }
            } else if let m = try? decoder.decodeImpression(buf, messageTimestampMs: timestamp, nowMs: now) {
                watermark.observe(m.ts)
                for (k, item) in m.itemsShown.enumerated() {
                    itemStore.apply(itemId: item, ts: m.ts, kind: .impression(position: m.position(at: k)),
                                    watermark: nil)
                }
                itemEvents &+= m.itemsShown.count
            } else {
                bad &+= 1
            }
            // A task advances its watermark periodically, not per event (Flink's
            // periodic watermark emission); the flush takes the dirty keys.
            if k & 1023 == 0, let w = watermark.watermark { itemStore.advanceWatermark(to: w) }
            if k & 65535 == 0 {
                sink &+= userStore.takeDirty().count &+ itemStore.takeDirty().count
            }
        }
        let pipelineSeconds = seconds(clock.now - t1)
        let pipelineCPU = threadCPUSeconds() - c1

        // (3) Source stage alone: decode, user features, routing, and encoding the
        // repartition records a source task hands to the producer.
        let sourceUsers = UserFeatureStore()
        var writer = ByteWriter(capacity: 256)
        var routed: [ItemEvent] = []
        routed.reserveCapacity(itemEvents)
        var offset: Int64 = 0
        let t2 = clock.now
        let c2 = threadCPUSeconds()
        batch.forEach { topic, timestamp, buf in
            offset &+= 1
            if topic == .interactions {
                guard let i = try? decoder.decodeInteraction(buf, messageTimestampMs: timestamp, nowMs: now) else { return }
                sourceUsers.apply(i)
                writer.bytes.removeAll(keepingCapacity: true)
                RepartitionRecord.item(ItemRouting.itemEvent(for: i),
                                       origin: RecordOrigin(sourceTopic: 0, partition: 0, offset: offset))
                    .encode(into: &writer)
                sink &+= writer.bytes.count
            } else if let m = try? decoder.decodeImpression(buf, messageTimestampMs: timestamp, nowMs: now) {
                ItemRouting.forEachItemEvent(for: m) { sub, ev in
                    writer.bytes.removeAll(keepingCapacity: true)
                    RepartitionRecord.item(ev, origin: RecordOrigin(sourceTopic: 1, partition: 0, offset: offset,
                                                                    subIndex: sub))
                        .encode(into: &writer)
                    sink &+= writer.bytes.count
                }
            }
        }
        let sourceSeconds = seconds(clock.now - t2)
        let sourceCPU = threadCPUSeconds() - c2

        // (4) Item stage alone over pre-routed events (routing excluded from timing).
        batch.forEach { topic, timestamp, buf in
            if topic == .interactions {
                if let i = try? decoder.decodeInteraction(buf, messageTimestampMs: timestamp, nowMs: now) {
                    routed.append(ItemRouting.itemEvent(for: i))
                }
            } else if let m = try? decoder.decodeImpression(buf, messageTimestampMs: timestamp, nowMs: now) {
                ItemRouting.forEachItemEvent(for: m) { _, ev in routed.append(ev) }
            }
        }
        let itemOnly = ItemFeatureStore()
        var itemWatermark = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)
        let t3 = clock.now
        let c3 = threadCPUSeconds()
        for (n, ev) in routed.enumerated() {
            itemWatermark.observe(ev.ts)
            itemOnly.apply(ev, watermark: nil)
            if n & 4095 == 4095, let w = itemWatermark.watermark { itemOnly.advanceWatermark(to: w) }
        }
        let itemSeconds = seconds(clock.now - t3)
        let itemCPU = threadCPUSeconds() - c3
        sink &+= itemOnly.takeDirty().count

        return CoreBenchmarkReport(events: events, bytes: batch.payload.count, decoded: decoded, badEvents: bad,
                                   itemEvents: itemEvents, decodeSeconds: decodeSeconds,
                                   pipelineSeconds: pipelineSeconds, sourceStageSeconds: sourceSeconds,
                                   itemStageSeconds: itemSeconds,
                                   cpuSeconds: (decodeCPU, pipelineCPU, sourceCPU, itemCPU), users: userStore.count,
                                   items: itemStore.count, droppedLate: itemStore.droppedLateCount,
                                   checksum: sink)
    }

    /// CPU time of the calling thread: on a shared machine, wall time also
    /// counts time other processes held the core.
    static func threadCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// Results of `CoreBenchmark.run`.
package struct CoreBenchmarkReport: Sendable, CustomStringConvertible {
    package var events: Int
    package var bytes: Int
    package var decoded: Int
    package var badEvents: Int
    package var itemEvents: Int
    package var decodeSeconds: Double
    package var pipelineSeconds: Double
    /// Decode + user features + routing + repartition record encoding.
    package var sourceStageSeconds: Double
    /// Item window counts + trending over pre-routed item events.
    package var itemStageSeconds: Double
    /// Thread CPU seconds of the same four phases (decode, pipeline, source stage, item stage).
    package var cpuSeconds: (decode: Double, pipeline: Double, source: Double, item: Double)
    package var users: Int
    package var items: Int
    package var droppedLate: Int64
    /// Keeps the optimizer from discarding work; meaningless otherwise.
    package var checksum: Int

    package var decodeEventsPerSecond: Double { Double(events) / decodeSeconds }
    package var pipelineEventsPerSecond: Double { Double(events) / pipelineSeconds }
    package var sourceStageEventsPerSecond: Double { Double(events) / sourceStageSeconds }
    package var itemStageItemEventsPerSecond: Double { Double(itemEvents) / itemStageSeconds }

    package var description: String {
        """
        core benchmark: \(events) events (\(bytes) bytes, \(badEvents) bad), \(itemEvents) item events, \
        \(users) users, \(items) items, \(droppedLate) dropped late
          decode only:        \(rate(decodeEventsPerSecond)) events/s (\(ms(decodeSeconds))); \(perCPU(events, cpuSeconds.decode)) events per CPU-second
          decode + features:  \(rate(pipelineEventsPerSecond)) events/s (\(ms(pipelineSeconds))), single thread, both stages; \(perCPU(events, cpuSeconds.pipeline)) events per CPU-second
          source stage:       \(rate(sourceStageEventsPerSecond)) events/s (\(ms(sourceStageSeconds))) decode + user features + routing + record encoding; \(perCPU(events, cpuSeconds.source)) events per CPU-second
          item stage:         \(rate(itemStageItemEventsPerSecond)) item events/s (\(ms(itemStageSeconds))) windows + trending; \(perCPU(itemEvents, cpuSeconds.item)) item events per CPU-second
        """
    }

    private func perCPU(_ n: Int, _ cpu: Double) -> String { rate(Double(n) / cpu) }
    private func rate(_ r: Double) -> String { String(Int((r).rounded())) }
    private func ms(_ s: Double) -> String { "\(Int((s * 1000).rounded())) ms" }
}
