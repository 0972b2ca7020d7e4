import FreshetCore
import FreshetFeatures

/// In-process throughput of the dataflow core, no I/O: decoding alone, and
/// decoding plus everything a source task and an item task do per event
/// (user features, item routing, window counts, trending, watermarks).
public enum CoreBenchmark {
    /// Generates `events` synthetic events (excluded from timing), then times
    /// (1) decode only and (2) the full single-threaded pipeline.
    public static func run(events: Int, users: Int, items: Int, seed: UInt64) -> CoreBenchmarkReport {
        let start: EventTimeMs = 1_732_000_000_000
        let span: Int64 = 10 * 86_400_000 // ten days: windows fill and expire
        let config = SyntheticConfig(seed: seed, users: users, items: items, startMs: start, spanMs: span,
                                     outOfOrderMs: 5_000, lateFraction: 0.01, badFraction: 0.001)
        let stream = Array(SyntheticStream(config: config, count: events))
        let bytes = stream.reduce(0) { $0 + $1.json.count }
        let now = config.nowMs
        let decoder = EventDecoder()

        // (1) Decode only.
        var decoded = 0
        var sink = 0
        let clock = ContinuousClock()
        let t0 = clock.now
        for e in stream {
            e.json.withUnsafeBytes { buf in
                switch e.topic {
                case .interactions:
                    if let i = try? decoder.decodeInteraction(buf, messageTimestampMs: e.timestampMs, nowMs: now) {
                        decoded += 1
                        sink &+= i.userId.utf8.count
                    }
                case .impressions:
                    if let m = try? decoder.decodeImpression(buf, messageTimestampMs: e.timestampMs, nowMs: now) {
                        decoded += 1
                        sink &+= m.itemsShown.count
                    }
                }
            }
        }
        let decodeSeconds = seconds(clock.now - t0)

        // (2) Full pipeline.
        let userStore = UserFeatureStore()
        let itemStore = ItemFeatureStore()
        var watermark = BoundedOutOfOrdernessWatermark(outOfOrdernessMs: 5_000)
        var itemEvents = 0
        var bad = 0
        let t1 = clock.now
        for (k, e) in stream.enumerated() {
            e.json.withUnsafeBytes { buf in
                switch e.topic {
                case .interactions:
                    guard let i = try? decoder.decodeInteraction(buf, messageTimestampMs: e.timestampMs, nowMs: now)
                    else { bad += 1; return }
                    watermark.observe(i.ts)
                    userStore.apply(i)
                    itemStore.apply(ItemRouting.itemEvent(for: i), watermark: nil)
                    itemEvents += 1
                case .impressions:
                    guard let m = try? decoder.decodeImpression(buf, messageTimestampMs: e.timestampMs, nowMs: now)
                    else { bad += 1; return }
                    watermark.observe(m.ts)
                    for ev in ItemRouting.itemEvents(for: m) { itemStore.apply(ev, watermark: nil) }
                    itemEvents += m.itemsShown.count
                }
            }
            // A task advances its watermark periodically, not per event (Flink's
            // periodic watermark emission); the flush takes the dirty keys.
            if k & 1023 == 1023, let w = watermark.watermark { itemStore.advanceWatermark(to: w) }
            if k & 65535 == 65535 {
                sink &+= userStore.takeDirty().count &+ itemStore.takeDirty().count
            }
        }
        let pipelineSeconds = seconds(clock.now - t1)
        return CoreBenchmarkReport(events: events, bytes: bytes, decoded: decoded, badEvents: bad,
                                   itemEvents: itemEvents, decodeSeconds: decodeSeconds,
                                   pipelineSeconds: pipelineSeconds, users: userStore.count,
                                   items: itemStore.count, droppedLate: itemStore.droppedLateCount,
                                   checksum: sink)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

/// Results of `CoreBenchmark.run`.
public struct CoreBenchmarkReport: Sendable, CustomStringConvertible {
    public var events: Int
    public var bytes: Int
    public var decoded: Int
    public var badEvents: Int
    public var itemEvents: Int
    public var decodeSeconds: Double
    public var pipelineSeconds: Double
    public var users: Int
    public var items: Int
    public var droppedLate: Int64
    /// Keeps the optimizer from discarding work; meaningless otherwise.
    public var checksum: Int

    public var decodeEventsPerSecond: Double { Double(events) / decodeSeconds }
    public var pipelineEventsPerSecond: Double { Double(events) / pipelineSeconds }

    public var description: String {
        """
        core benchmark: \(events) events (\(bytes) bytes, \(badEvents) bad), \(itemEvents) item events, \
        \(users) users, \(items) items, \(droppedLate) dropped late
          decode only:        \(rate(decodeEventsPerSecond)) events/s (\(ms(decodeSeconds)))
          decode + features:  \(rate(pipelineEventsPerSecond)) events/s (\(ms(pipelineSeconds)))
        """
    }

    private func rate(_ r: Double) -> String { String(Int((r).rounded())) }
    private func ms(_ s: Double) -> String { "\(Int((s * 1000).rounded())) ms" }
}
