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
    /// (1) decode only, (2) the full single-threaded pipeline, (3) the source
    /// stage and (4) the item stage; `phases` picks which (all by default: a
    /// profiler can then look at one phase alone).
    package static func run(events: Int, users: Int, items: Int, seed: UInt64,
                            phases: Set<CoreBenchmarkPhase> = Set(CoreBenchmarkPhase.allCases)) -> CoreBenchmarkReport {
        let start: EventTimeMs = 1_732_000_000_000
        let span: Int64 = 10 * 86_400_000 // ten days: windows fill and expire
        let config = SyntheticConfig(seed: seed, users: users, items: items, startMs: start, spanMs: span,
                                     outOfOrderMs: 5_000, lateFraction: 0.01, badFraction: 0.001)
        let batch = SyntheticBatch(SyntheticStream(config: config, count: events))
        let now = config.nowMs
        let decoder = EventDecoder()
        let clock = ContinuousClock()
        var sink = 0

        // Every phase decodes as a source task does: ids stay bytes in one
        // reused `DecodedEvent`, no `String` per id.
        var event = DecodedEvent()

        // (1) Decode only.
        var decoded = 0
        let t0 = clock.now
        let c0 = CPUClock.threadSeconds()
        if phases.contains(.decode) { batch.forEach { topic, timestamp, buf in
            do throws(BadInput) {
                if topic == .interactions {
                    try decoder.decode(interaction: buf, messageTimestampMs: timestamp, nowMs: now, into: &event)
                } else {
                    try decoder.decode(impression: buf, messageTimestampMs: timestamp, nowMs: now, into: &event)
                }
                decoded += 1
                sink &+= event.itemCount
            } catch {}
        } }
        let decodeSeconds = seconds(clock.now - t0)
        let decodeCPU = CPUClock.threadSeconds() - c0

        // (2) Full pipeline.
        let userStore = UserFeatureStore()
        let itemStore = ItemFeatureStore()
        var watermark = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)
        var itemEvents = 0
        var bad = 0
        var k = 0
        let t1 = clock.now
        let c1 = CPUClock.threadSeconds()
        var userPrefetch = UserStatePrefetcher()
        if phases.contains(.pipeline) { batch.forEachWithKeys { index, topic, timestamp, buf, key in
            k &+= 1
            // As the processing loop shows an interactions task its records
            // ahead (`UserStatePrefetcher`): keys of interactions only.
            let ahead = index &+ UserStatePrefetcher.lookahead
            if ahead < batch.count, batch.topics[ahead] == .interactions { userPrefetch.show(key: key(ahead), store: userStore) }
            do throws(BadInput) {
                if topic == .interactions {
                    try decoder.decode(interaction: buf, messageTimestampMs: timestamp, nowMs: now, into: &event)
                    watermark.observe(event.ts)
                    let ts = event.ts, positive = event.action.isPositive
                    // Both stages in one thread: the item features take the
                    // event's fields directly (a skip changes no feature).
                    event.withIds(in: buf) { ids in
                        userStore.apply(userId: ids.user, itemId: ids.item, ts: ts, positive: positive)
                        if positive { itemStore.apply(itemId: ids.item, ts: ts, positive: true, watermark: nil) }
                    }
                    itemEvents &+= 1
                } else {
                    try decoder.decode(impression: buf, messageTimestampMs: timestamp, nowMs: now, into: &event)
                    watermark.observe(event.ts)
                    let ts = event.ts, count = event.itemCount
                    event.withIds(in: buf) { ids in
                        for k in 0..<count { itemStore.apply(itemId: ids.shownItem(k), ts: ts, positive: false, watermark: nil) }
                    }
                    itemEvents &+= count
                }
            } catch {
                bad &+= 1
            }
            // A task advances its watermark periodically, not per event (Flink's
            // periodic watermark emission); the flush takes the dirty keys.
            if k & 1023 == 0, let w = watermark.watermark { itemStore.advanceWatermark(to: w) }
            if k & 65535 == 0 {
                sink &+= userStore.takeDirty().count &+ itemStore.takeDirty().count
            }
        } }
        let pipelineSeconds = seconds(clock.now - t1)
        let pipelineCPU = CPUClock.threadSeconds() - c1

        // (3) Source stage alone: decode, user features, routing, and encoding the
        // repartition records a source task hands to the producer (as `SourceTask`).
        let sourceUsers = UserFeatureStore()
        var writer = ByteWriter(capacity: 256)
        var routed: [ItemEvent] = []
        routed.reserveCapacity(itemEvents)
        var offset: Int64 = 0
        var routedBytes = 0
        let t2 = clock.now
        let c2 = CPUClock.threadSeconds()
        var sourcePrefetch = UserStatePrefetcher()
        if phases.contains(.source) { batch.forEachWithKeys { index, topic, timestamp, buf, key in
            offset &+= 1
            let ahead = index &+ UserStatePrefetcher.lookahead
            if ahead < batch.count, batch.topics[ahead] == .interactions { sourcePrefetch.show(key: key(ahead), store: sourceUsers) }
            do throws(BadInput) {
                if topic == .interactions {
                    try decoder.decode(interaction: buf, messageTimestampMs: timestamp, nowMs: now, into: &event)
                    let ts = event.ts, action = event.action, dwell = event.dwellMs
                    event.withIds(in: buf) { ids in
                        sourceUsers.apply(userId: ids.user, itemId: ids.item, ts: ts, positive: action.isPositive)
                        // As `SourceTask` without a join reading the sources: a skip stays here.
                        guard action.isPositive else { return }
                        writer.bytes.removeAll(keepingCapacity: true)
                        RepartitionRecord.encodeItem(itemId: ids.item, userId: ids.user, ts: ts,
                                                     kind: .interaction(action, dwellMs: dwell), requestId: ids.requestId,
                                                     origin: RecordOrigin(sourceTopic: 0, partition: 0, offset: offset),
                                                     userHistoryEncoded: [], into: &writer)
                        routedBytes &+= writer.bytes.count
                    }
                } else {
                    try decoder.decode(impression: buf, messageTimestampMs: timestamp, nowMs: now, into: &event)
                    let ts = event.ts, count = event.itemCount
                    // As `SourceTask` routes: one record per item partition
                    // (four, by a stand-in for Kafka's partitioner), a lone
                    // item as an item event record.
                    event.withIds(in: buf) { ids in
                        let source = RecordOrigin(sourceTopic: 1, partition: 0, offset: offset)
                        ImpressionItemsRecord.forEachPartitionGroup(count: count, partition: {
                            Int32(KeyIndex.tag(bytes: ids.shownItem($0)) & 3)
                        }) { _, group in
                            writer.bytes.removeAll(keepingCapacity: true)
                            if group.count == 1, let k = group.first {
                                var origin = source
                                origin.subIndex = UInt32(k)
                                RepartitionRecord.encodeItem(itemId: ids.shownItem(k), userId: ids.user, ts: ts,
                                                             kind: .impression(position: event.position(at: k)),
                                                             requestId: ids.requestId, origin: origin,
                                                             userHistoryEncoded: [], into: &writer)
                            } else {
                                // The output's copy into its bundle, as `SourceTask` hands the record over.
                                ImpressionItemsRecord.withEncoded(userId: ids.user, ts: ts, requestId: ids.requestId,
                                                                  source: source, members: group, shownItem: ids.shownItem,
                                                                  position: event.position(at:)) {
                                    writer.bytes.append(contentsOf: $0.assumingMemoryBound(to: UInt8.self))
                                }
                            }
                            routedBytes &+= writer.bytes.count
                        }
                    }
                }
            } catch {}
        } }
        let sourceSeconds = seconds(clock.now - t2)
        sink &+= routedBytes
        let sourceCPU = CPUClock.threadSeconds() - c2

        // (4) Item stage alone over pre-routed events (routing excluded from timing).
        if phases.contains(.item) { batch.forEach { topic, timestamp, buf in
            if topic == .interactions {
                if let i = try? decoder.decodeInteraction(buf, messageTimestampMs: timestamp, nowMs: now) {
                    routed.append(ItemRouting.itemEvent(for: i))
                }
            } else if let m = try? decoder.decodeImpression(buf, messageTimestampMs: timestamp, nowMs: now) {
                ItemRouting.forEachItemEvent(for: m) { _, ev in routed.append(ev) }
            }
        } }
        let itemOnly = ItemFeatureStore()
        var itemWatermark = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)
        let t3 = clock.now
        let c3 = CPUClock.threadSeconds()
        for (n, ev) in routed.enumerated() {
            itemWatermark.observe(ev.ts)
            itemOnly.apply(ev, watermark: nil)
            if n & 4095 == 4095, let w = itemWatermark.watermark { itemOnly.advanceWatermark(to: w) }
        }
        let itemSeconds = seconds(clock.now - t3)
        let itemCPU = CPUClock.threadSeconds() - c3
        sink &+= itemOnly.takeDirty().count

        return CoreBenchmarkReport(phases: phases, events: events, bytes: batch.payload.count, decoded: decoded,
                                   badEvents: bad, itemEvents: max(itemEvents, routed.count), decodeSeconds: decodeSeconds,
                                   pipelineSeconds: pipelineSeconds, sourceStageSeconds: sourceSeconds,
                                   itemStageSeconds: itemSeconds, routedBytes: routedBytes,
                                   cpuSeconds: (decodeCPU, pipelineCPU, sourceCPU, itemCPU), users: userStore.count,
                                   items: itemStore.count, droppedLate: itemStore.droppedLateCount,
                                   checksum: sink)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// The parts of `CoreBenchmark.run`, timed one after the other.
package enum CoreBenchmarkPhase: String, CaseIterable, Sendable {
    /// JSON decoding alone.
    case decode
    /// Decode + user features + item features, both stages in one thread.
    case pipeline
    /// Decode + user features + routing + repartition record encoding.
    case source
    /// Item windows + trending over pre-routed item events.
    case item
}

/// Results of `CoreBenchmark.run`.
package struct CoreBenchmarkReport: Sendable, CustomStringConvertible {
    /// The phases that ran (the others' figures are zero and not printed).
    package var phases: Set<CoreBenchmarkPhase>
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
    /// Bytes of the item-keyed repartition records the source stage encoded.
    package var routedBytes: Int
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
        var lines = ["""
            core benchmark: \(events) events (\(bytes) bytes, \(badEvents) bad), \(itemEvents) item events, \
            \(users) users, \(items) items, \(droppedLate) dropped late
            """]
        if phases.contains(.decode) {
            lines.append("  decode only:        \(rate(decodeEventsPerSecond)) events/s (\(ms(decodeSeconds))); \(perCPU(events, cpuSeconds.decode)) events per CPU-second")
        }
        if phases.contains(.pipeline) {
            lines.append("  decode + features:  \(rate(pipelineEventsPerSecond)) events/s (\(ms(pipelineSeconds))), single thread, both stages; \(perCPU(events, cpuSeconds.pipeline)) events per CPU-second")
        }
        if phases.contains(.source) {
            lines.append("  source stage:       \(rate(sourceStageEventsPerSecond)) events/s (\(ms(sourceStageSeconds))) decode + user features + routing + record encoding; \(perCPU(events, cpuSeconds.source)) events per CPU-second; \(String(format: "%.1f", Double(routedBytes) / Double(events))) routed bytes an event")
        }
        if phases.contains(.item) {
            lines.append("  item stage:         \(rate(itemStageItemEventsPerSecond)) item events/s (\(ms(itemStageSeconds))) windows + trending; \(perCPU(itemEvents, cpuSeconds.item)) item events per CPU-second")
        }
        return lines.joined(separator: "\n")
    }

    private func perCPU(_ n: Int, _ cpu: Double) -> String { rate(Double(n) / cpu) }
    private func rate(_ r: Double) -> String { String(Int((r).rounded())) }
    private func ms(_ s: Double) -> String { "\(Int((s * 1000).rounded())) ms" }
}
