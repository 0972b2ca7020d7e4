import XCTest
import Foundation
import FreshetTestSupport
@testable import FreshetRuntime

/// Freshet's families on swift-metrics + swift-prometheus: the names, types,
/// labels and HELP texts documented in docs/OPERATIONS.md "Metrics", and the
/// removal of a revoked partition's series.
final class ObservabilityMetricsTests: XCTestCase {
    private func makeMetrics() -> FreshetMetrics {
        FreshetMetrics(version: "0.1.0", librdkafkaVersion: "2.3.0")
    }

    /// `# TYPE` and `# HELP` lines by family name.
    private func headers(_ text: String) -> (types: [String: String], helps: [String: String]) {
        var types: [String: String] = [:], helps: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
            guard parts.count == 4, parts[0] == "#" else { continue }
            if parts[1] == "TYPE" { types[parts[2]] = parts[3] }
            if parts[1] == "HELP" { helps[parts[2]] = parts[3] }
        }
        return (types, helps)
    }

    func testEveryFamilyHasItsDocumentedTypeAndHelp() {
        let m = makeMetrics()
        m.recordsConsumed(topic: "interactions", partition: Int32(3)).increment(by: 5)
        m.deadLetters(reason: "not_json").increment()
        m.consumerLag(topic: "interactions", partition: 3).set(1234)
        m.watermarkMs(task: "interactions-3").set(1_732_700_000_000)
        m.eventTimeLagMs(task: "interactions-3").set(250)
        m.stateEntries(store: "users-interactions-3").set(7)
        m.redisRejectedKeys(reason: "WRONGTYPE").increment()
        m.checkpointStoreLost(evidence: "epoch_missing").increment()
        let (types, helps) = headers(m.render())
        let expected: [String: String] = [
            "freshet_records_consumed_total": "counter", "freshet_dead_letters_total": "counter",
            "freshet_late_events_dropped_total": "counter", "freshet_consumer_lag": "gauge",
            "freshet_watermark_ms": "gauge", "freshet_event_time_lag_ms": "gauge",
            "freshet_freshness_seconds": "histogram", "freshet_redis_pipeline_seconds": "histogram",
            "freshet_redis_batch_commands": "histogram", "freshet_checkpoint_seconds": "histogram",
            "freshet_checkpoint_bytes": "gauge", "freshet_checkpoint_failures_total": "counter",
            "freshet_rebalances_total": "counter", "freshet_assigned_partitions": "gauge",
            "freshet_state_entries": "gauge", "freshet_repartition_duplicates_dropped_total": "counter",
            "freshet_dead_letter_duplicates_skipped_total": "counter", "freshet_redis_fenced_writes_total": "counter",
            "freshet_redis_rejected_keys_total": "counter", "freshet_checkpoint_store_lost_total": "counter",
            "freshet_ready": "gauge", "freshet_build_info": "gauge",
            "freshet_paused_partitions": "gauge", "freshet_alignment_pauses_total": "counter",
            "freshet_undecodable_repartition_records_total": "counter",
            "freshet_user_key_partitioning_conflicts_total": "counter", "freshet_user_histories_shortened_total": "counter",
            "freshet_stale_finished_markers_total": "counter",
        ]
        XCTAssertEqual(types, expected)
        XCTAssertEqual(helps["freshet_records_consumed_total"], "Kafka records consumed, by topic and partition.")
        XCTAssertEqual(helps["freshet_freshness_seconds"], "Seconds from an event's event time to Redis acknowledging its features.")
        XCTAssertEqual(Set(helps.keys), Set(expected.keys), "every family has HELP")
    }

    func testValuesAndLabels() {
        let m = makeMetrics()
        let consumed = m.recordsConsumed(topic: "interactions", partition: Int32(3))
        consumed.increment(by: 5)
        m.recordsConsumed(topic: "interactions", partition: 3).increment()  // the same series
        m.deadLetters(reason: "not_json").increment()
        m.consumerLag(topic: "interactions", partition: 3).set(1234)
        m.watermarkMs(task: "interactions-3").set(1_732_700_000_000)
        m.observeFreshness(eventTimeMs: 1000, ackedAtMs: 1250)
        m.observeFreshness(eventTimeMs: 2000, ackedAtMs: 1000)  // clock skew: 0 s
        m.record(.notReady(["redis unreachable"]))
        let text = PrometheusText(m.render())
        XCTAssertEqual(text.series("freshet_records_consumed_total").map(\.labels), [#"partition="3",topic="interactions""#])
        XCTAssertEqual(text.sum("freshet_records_consumed_total"), 6)
        XCTAssertEqual(text.sum("freshet_dead_letters_total", labelsContaining: #"reason="not_json""#), 1)
        XCTAssertEqual(text.sum("freshet_consumer_lag", labelsContaining: #"partition="3",topic="interactions""#), 1234)
        XCTAssertEqual(text.sum("freshet_watermark_ms", labelsContaining: #"task="interactions-3""#), 1_732_700_000_000)
        XCTAssertEqual(text.sum("freshet_freshness_seconds_count"), 2)
        XCTAssertEqual(text.sum("freshet_freshness_seconds_sum"), 0.25)
        let buckets = Dictionary(uniqueKeysWithValues: text.series("freshet_freshness_seconds_bucket").map { ($0.labels, $0.value) })
        XCTAssertEqual(buckets.count, FreshetMetrics.Buckets.freshnessSeconds.count + 1)
        XCTAssertEqual(buckets[#"le="0.005""#], 1, "cumulative: the 0 s sample")
        XCTAssertEqual(buckets[#"le="0.1""#], 1)
        XCTAssertEqual(buckets[#"le="0.25""#], 2)
        XCTAssertEqual(buckets[#"le="+Inf""#], 2)
        XCTAssertEqual(text.sum("freshet_ready"), 0)
        XCTAssertEqual(text.series("freshet_build_info").map(\.labels), [#"librdkafka="2.3.0",version="0.1.0""#])
        XCTAssertEqual(text.sum("freshet_build_info"), 1)
        XCTAssertEqual(text.sum("freshet_late_events_dropped_total"), 0, "unlabelled families show from the start")
    }

    func testRevokedPartitionAndTaskSeriesAreRemoved() {
        let m = makeMetrics()
        for p in 0..<2 {
            m.recordsConsumed(topic: "interactions", partition: p).increment()
            m.consumerLag(topic: "interactions", partition: p).set(10)
        }
        m.watermarkMs(task: "items-1").set(5)
        m.eventTimeLagMs(task: "items-1").set(5)
        m.stateEntries(store: "items-items-1").set(5)
        m.removePartition(topic: "interactions", partition: 1)
        m.removeTask("items-1")
        let text = PrometheusText(m.render())
        XCTAssertEqual(text.series("freshet_records_consumed_total").map(\.labels), [#"partition="0",topic="interactions""#])
        XCTAssertEqual(text.series("freshet_consumer_lag").map(\.labels), [#"partition="0",topic="interactions""#])
        XCTAssertTrue(text.series("freshet_watermark_ms").isEmpty)
        XCTAssertTrue(text.series("freshet_event_time_lag_ms").isEmpty)
        XCTAssertTrue(text.series("freshet_state_entries").isEmpty)
        // Removing what is not there is harmless; a re-created series starts from zero.
        m.removePartition(topic: "interactions", partition: 7)
        m.recordsConsumed(topic: "interactions", partition: 1).increment(by: 2)
        XCTAssertEqual(PrometheusText(m.render()).sum("freshet_records_consumed_total", labelsContaining: #"partition="1""#), 2)
    }

    func testConcurrentIncrementsSum() {
        let m = makeMetrics()
        let threads = 4, perThread = 50_000
        DispatchQueue.concurrentPerform(iterations: threads) { i in
            // Each thread fetches its own handle: they must share one series.
            let counter = m.recordsConsumed(topic: "t", partition: 0)
            for _ in 0..<perThread {
                counter.increment()
                m.redisBatchCommands.record(1)
            }
            if i == 0 { _ = m.render() }
        }
        let text = PrometheusText(m.render())
        XCTAssertEqual(text.sum("freshet_records_consumed_total"), Double(threads * perThread))
        XCTAssertEqual(text.sum("freshet_redis_batch_commands_count"), Double(threads * perThread))
    }
}
