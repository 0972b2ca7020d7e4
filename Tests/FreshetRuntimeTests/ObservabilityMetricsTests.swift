import XCTest
import Foundation
@testable import FreshetRuntime

final class ObservabilityMetricsTests: XCTestCase {
    func testCounterRendering() {
        let r = MetricsRegistry()
        let c = r.counter("freshet_records_consumed_total", help: "Records consumed.",
                          labels: ["topic": "interactions", "partition": "3"])
        c.increment(by: 41)
        c.inc()
        XCTAssertEqual(r.render(), """
        # HELP freshet_records_consumed_total Records consumed.
        # TYPE freshet_records_consumed_total counter
        freshet_records_consumed_total{partition="3",topic="interactions"} 42

        """)
    }

    func testSameLabelsGiveSameHandle() {
        let r = MetricsRegistry()
        let a = r.counter("x_total", help: "x", labels: ["a": "1", "b": "2"])
        let b = r.counter("x_total", help: "x", labels: ["b": "2", "a": "1"])
        XCTAssertTrue(a === b)
        let other = r.counter("x_total", help: "x", labels: ["a": "1", "b": "3"])
        XCTAssertFalse(a === other)
        XCTAssertEqual(r.seriesCount("x_total"), 2)
    }

    func testGaugeRenderingAndLabelEscaping() {
        let r = MetricsRegistry()
        r.gauge("g", help: "Help with \\ backslash\nand newline.", labels: ["path": "C:\\dir \"q\"\nnext"]).set(1.5)
        r.gauge("g", help: "ignored", labels: ["path": "plain"]).set(-3)
        let g = r.gauge("h", help: "h")
        g.set(2)
        g.add(0.25)
        g.dec()
        XCTAssertEqual(r.render(), """
        # HELP g Help with \\\\ backslash\\nand newline.
        # TYPE g gauge
        g{path="C:\\\\dir \\"q\\"\\nnext"} 1.5
        g{path="plain"} -3
        # HELP h h
        # TYPE h gauge
        h 1.25

        """)
    }

    func testGaugeSpecialValues() {
        XCTAssertEqual(MetricsRegistry.formatValue(.infinity), "+Inf")
        XCTAssertEqual(MetricsRegistry.formatValue(-.infinity), "-Inf")
        XCTAssertEqual(MetricsRegistry.formatValue(.nan), "NaN")
        XCTAssertEqual(MetricsRegistry.formatValue(0), "0")
        XCTAssertEqual(MetricsRegistry.formatValue(0.005), "0.005")
        XCTAssertEqual(MetricsRegistry.formatValue(1_732_700_000_000), "1732700000000")
    }

    func testHistogramCumulativeBuckets() {
        let r = MetricsRegistry()
        let h = r.histogram("lat_seconds", help: "Latency.", buckets: [0.1, 1, 10], labels: ["op": "w"])
        for v in [0.05, 0.1, 0.5, 2, 20] { h.observe(v) }
        XCTAssertEqual(r.render(), """
        # HELP lat_seconds Latency.
        # TYPE lat_seconds histogram
        lat_seconds_bucket{op="w",le="0.1"} 2
        lat_seconds_bucket{op="w",le="1"} 3
        lat_seconds_bucket{op="w",le="10"} 4
        lat_seconds_bucket{op="w",le="+Inf"} 5
        lat_seconds_sum{op="w"} 22.65
        lat_seconds_count{op="w"} 5

        """)
    }

    func testHistogramWithoutLabels() {
        let r = MetricsRegistry()
        let h = r.histogram("b", help: "B.", buckets: [1, 2])
        h.observe(2)
        XCTAssertEqual(r.render(), """
        # HELP b B.
        # TYPE b histogram
        b_bucket{le="1"} 0
        b_bucket{le="2"} 1
        b_bucket{le="+Inf"} 1
        b_sum 2
        b_count 1

        """)
    }

    func testRemoveSeries() {
        let r = MetricsRegistry()
        r.counter("c_total", help: "c", labels: ["topic": "t", "partition": "1"]).inc()
        r.counter("c_total", help: "c", labels: ["topic": "t", "partition": "2"]).inc()
        XCTAssertTrue(r.remove("c_total", labels: ["partition": "1", "topic": "t"]))
        XCTAssertFalse(r.remove("c_total", labels: ["partition": "1", "topic": "t"]))
        let text = r.render()
        XCTAssertFalse(text.contains("partition=\"1\""))
        XCTAssertTrue(text.contains("c_total{partition=\"2\",topic=\"t\"} 1"))
        // A re-created series starts from zero.
        XCTAssertEqual(r.counter("c_total", help: "c", labels: ["topic": "t", "partition": "1"]).value, 0)
        XCTAssertEqual(r.removeAll("c_total") { $0["topic"] == "t" }, 2)
        XCTAssertEqual(r.seriesCount("c_total"), 0)
    }

    func testConcurrentIncrementsSum() {
        let r = MetricsRegistry()
        let threads = 4, perThread = 100_000
        let c = r.counter("n_total", help: "n")
        let h = r.histogram("v", help: "v", buckets: [0.5, 1.5])
        let g = r.gauge("g", help: "g")
        DispatchQueue.concurrentPerform(iterations: threads) { i in
            // Half the threads look the handle up themselves: it must be the same series.
            let counter = i % 2 == 0 ? c : r.counter("n_total", help: "n")
            for _ in 0..<perThread {
                counter.inc()
                h.observe(1)
                g.add(1)
            }
        }
        XCTAssertEqual(c.value, threads * perThread)
        XCTAssertEqual(h.count, threads * perThread)
        XCTAssertEqual(h.sum, Double(threads * perThread))
        XCTAssertEqual(g.value, Double(threads * perThread))
        XCTAssertTrue(r.render().contains("n_total \(threads * perThread)\n"))
    }

    func testConcurrentRegistrationAndRender() {
        let r = MetricsRegistry()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            for p in 0..<200 {
                r.counter("c_total", help: "c", labels: ["partition": String(p)]).inc()
                if p % 10 == 0 { _ = r.render() }
                if i == 3 && p % 3 == 0 { r.remove("c_total", labels: ["partition": String(p)]) }
            }
        }
        XCTAssertLessThanOrEqual(r.seriesCount("c_total"), 200)
    }

    func testRedact() {
        XCTAssertEqual(MetricsRegistry.redact("redis://default:s3cr3t@redis:6379/0"), "redis://default:***@redis:6379/0")
        XCTAssertEqual(MetricsRegistry.redact("redis://s3cr3t@redis:6379"), "redis://***@redis:6379")
        XCTAssertEqual(MetricsRegistry.redact("redis://redis:6379"), "redis://redis:6379")
        XCTAssertEqual(MetricsRegistry.redact("sasl.password=hunter2 bootstrap.servers=kafka:9092"),
                       "sasl.password=*** bootstrap.servers=kafka:9092")
        XCTAssertEqual(MetricsRegistry.redact(#"{"api_key": "abc", "user": "u1"}"#), #"{"api_key": "***", "user": "u1"}"#)
        XCTAssertEqual(MetricsRegistry.redact("token: xyz, author: bob"), "token: ***, author: bob")
        XCTAssertEqual(MetricsRegistry.redact("redis.auth=pw;ssl.key.password='p w'"), "redis.auth=***;ssl.key.password='***'")
        let redacted = MetricsRegistry.redact("Config(brokers: kafka:9092, redis: redis://:pw@r:6379, secret=abc)")
        XCTAssertFalse(redacted.contains("pw@"))
        XCTAssertFalse(redacted.contains("abc"))
        XCTAssertTrue(redacted.contains("kafka:9092"))
    }

    func testFreshetMetricsFamilies() {
        let m = FreshetMetrics(version: "0.1.0", librdkafkaVersion: "2.3.0")
        let consumed = m.recordsConsumed(topic: "interactions", partition: Int32(3))
        XCTAssertTrue(consumed === m.recordsConsumed(topic: "interactions", partition: 3))
        consumed.increment(by: 5)
        m.deadLetters(reason: "not_json").inc()
        m.consumerLag(topic: "interactions", partition: 3).set(1234)
        m.watermarkMs(task: "source/interactions/3").set(1_732_700_000_000)
        m.observeFreshness(eventTimeMs: 1000, ackedAtMs: 1250)
        m.record(.notReady(["redis unreachable"]))
        let text = m.render()
        for name in ["freshet_records_consumed_total", "freshet_dead_letters_total", "freshet_late_events_dropped_total",
                     "freshet_consumer_lag", "freshet_watermark_ms", "freshet_event_time_lag_ms",
                     "freshet_freshness_seconds", "freshet_redis_pipeline_seconds", "freshet_redis_batch_commands",
                     "freshet_checkpoint_seconds", "freshet_checkpoint_bytes", "freshet_checkpoint_failures_total",
                     "freshet_rebalances_total", "freshet_assigned_partitions", "freshet_state_entries",
                     "freshet_repartition_duplicates_dropped_total", "freshet_redis_fenced_writes_total",
                     "freshet_ready", "freshet_build_info"] {
            XCTAssertTrue(text.contains("# TYPE \(name) "), "missing family \(name)")
        }
        XCTAssertTrue(text.contains("freshet_records_consumed_total{partition=\"3\",topic=\"interactions\"} 5\n"))
        XCTAssertTrue(text.contains("freshet_dead_letters_total{reason=\"not_json\"} 1\n"))
        XCTAssertTrue(text.contains("freshet_consumer_lag{partition=\"3\",topic=\"interactions\"} 1234\n"))
        XCTAssertTrue(text.contains("freshet_watermark_ms{task=\"source/interactions/3\"} 1732700000000\n"))
        XCTAssertTrue(text.contains("freshet_freshness_seconds_bucket{le=\"0.25\"} 1\n"))
        XCTAssertTrue(text.contains("freshet_freshness_seconds_bucket{le=\"0.1\"} 0\n"))
        XCTAssertTrue(text.contains("freshet_freshness_seconds_bucket{le=\"60\"} 1\n"))
        XCTAssertTrue(text.contains("freshet_ready 0\n"))
        XCTAssertTrue(text.contains("freshet_build_info{librdkafka=\"2.3.0\",version=\"0.1.0\"} 1\n"))

        m.removePartition(topic: "interactions", partition: 3)
        let after = m.render()
        XCTAssertFalse(after.contains("topic=\"interactions\""))
        XCTAssertTrue(after.contains("# TYPE freshet_consumer_lag gauge"))
    }
}
