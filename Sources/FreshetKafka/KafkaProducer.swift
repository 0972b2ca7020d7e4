import CRdKafka
import Foundation

/// An idempotent producer.
///
/// Defaults applied before `KafkaConfig` (all overridable):
/// `enable.idempotence=true`, `linger.ms=5`, `batch.num.messages=10000`,
/// `queue.buffering.max.messages=1000000`, `queue.buffering.max.kbytes=1048576`,
/// `compression.type=none`, `partitioner=murmur2_random` (Java-compatible, so
/// every instance and `KafkaProducer.partition(forKey:partitionCount:)` agree).
///
/// Delivery: `produce` only enqueues. Delivery reports are served by `poll`
/// and `flush`; a message that could not be delivered (after librdkafka's
/// retries, bounded by `message.timeout.ms`) increments `deliveryFailures` and
/// its error is kept until `takeDeliveryErrors()`. `flush` throws while such
/// errors are pending, so no failure goes unnoticed at a checkpoint.
///
/// Threading: `produce` and `outstanding` never block for long (except on a
/// full queue, bounded, see `produce`); `poll` and `flush` block up to their
/// timeout; all are safe from any thread (librdkafka handles are thread-safe).
package final class KafkaProducer: @unchecked Sendable {
    // @unchecked Sendable: `rk` and topic handles are thread-safe librdkafka
    // objects; `topicHandles` is guarded by `lock`; delivery state lives in the
    // context behind its own lock.

    /// A cached topic handle for the fast produce path; valid as long as the
    /// producer that made it.
    package struct Topic: @unchecked Sendable {
        // @unchecked Sendable: wraps an immutable, thread-safe rd_kafka_topic_t.
        package let name: String
        fileprivate let rkt: OpaquePointer
    }

    /// How long `produce` keeps retrying when librdkafka's queue is full.
    package var queueFullTimeoutMs: Int32 = 10_000

    private let rk: OpaquePointer
    private let context: ProducerContext
    private let lock = NSLock()
    private var topicHandles: [String: Topic] = [:]

    package init(config: KafkaConfig) throws(KafkaError) {
        let ctxName = "create producer"
        let conf = try config.makeConf(
            defaults: [
                "enable.idempotence": "true",
                "linger.ms": "5",
                "batch.num.messages": "10000",
                "queue.buffering.max.messages": "1000000",
                "queue.buffering.max.kbytes": "1048576",
                "compression.type": "none",
                "partitioner": "murmur2_random",
            ],
            forced: [:],
            context: ctxName)
        let context = ProducerContext()
        self.context = context
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf, producerDeliveryCallback)
        rd_kafka_conf_set_error_cb(conf, producerErrorCallback)
        rk = try CInterop.newClient(type: RD_KAFKA_PRODUCER, conf: conf, context: ctxName)
    }

    deinit {
        // Order: topic handles, then the client (which drops undelivered messages:
        // call `flush` first), then the context (released after this body).
        for t in topicHandles.values { rd_kafka_topic_destroy(t.rkt) }
        rd_kafka_destroy(rk)
    }

    /// A cached handle for `name` (created on first use).
    package func topic(_ name: String) throws(KafkaError) -> Topic {
        lock.lock()
        defer { lock.unlock() }
        if let t = topicHandles[name] { return t }
        guard let rkt = rd_kafka_topic_new(rk, name, nil) else {
            throw KafkaError.from(rd_kafka_last_error(), context: "create topic handle \(name)")
        }
        let t = Topic(name: name, rkt: rkt)
        topicHandles[name] = t
        return t
    }

    /// Enqueues one record (copied). `partition` nil: chosen by key with
    /// murmur2 (random for a nil key). Non-blocking unless librdkafka's queue
    /// is full, in which case it serves delivery reports and retries for up to
    /// `queueFullTimeoutMs`, then throws a retriable `_QUEUE_FULL` error.
    ///
    /// - Throws: invalid arguments, unknown partition/topic when already known
    ///   from metadata, queue full, or the producer's fatal error.
    /// A nil `value` is a null (tombstone) value; an empty one stays empty.
    package func produce(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?,
                        headers: [(String, [UInt8])] = [], timestampMs: Int64? = nil) throws(KafkaError) {
        let t = try self.topic(topic)
        var result: KafkaError? = nil
        func withValue(_ body: (UnsafeRawBufferPointer?) -> Void) {
            if let value { value.withUnsafeBytes { body($0) } } else { body(nil) }
        }
        withValue { v in
            if let key {
                key.withUnsafeBytes { k in
                    do throws(KafkaError) {
                        try produce(to: t, partition: partition, key: k, value: v, headers: headers, timestampMs: timestampMs)
                    } catch { result = error }
                }
            } else {
                do throws(KafkaError) {
                    try produce(to: t, partition: partition, key: nil, value: v, headers: headers, timestampMs: timestampMs)
                } catch { result = error }
            }
        }
        if let result { throw result }
    }

    /// Fast path: a cached topic handle and borrowed bytes (copied before
    /// returning). A non-nil empty `key` is an empty key, distinct from no key;
    /// likewise a nil `value` is a null (tombstone) value and a non-nil empty
    /// one an empty value. Same blocking and error behaviour as `produce(topic:...)`.
    package func produce(to topic: Topic, partition: Int32? = nil, key: UnsafeRawBufferPointer?,
                        value: UnsafeRawBufferPointer?, headers: [(String, [UInt8])] = [],
                        timestampMs: Int64? = nil) throws(KafkaError) {
        var dummy: UInt8 = 0
        try withUnsafeMutablePointer(to: &dummy) { (dummyPtr) throws(KafkaError) in
            var vus: [rd_kafka_vu_t] = []
            vus.reserveCapacity(7)
            var vu = rd_kafka_vu_t()
            vu.vtype = RD_KAFKA_VTYPE_RKT
            vu.u.rkt = topic.rkt
            vus.append(vu)
            vu = rd_kafka_vu_t()
            vu.vtype = RD_KAFKA_VTYPE_PARTITION
            vu.u.i32 = partition ?? RD_KAFKA_PARTITION_UA
            vus.append(vu)
            vu = rd_kafka_vu_t()
            vu.vtype = RD_KAFKA_VTYPE_MSGFLAGS
            vu.u.i = RD_KAFKA_MSG_F_COPY
            vus.append(vu)
            vu = rd_kafka_vu_t()
            vu.vtype = RD_KAFKA_VTYPE_VALUE
            // librdkafka treats a NULL value as a null (tombstone) value; an
            // empty buffer may have a nil base address, so an empty value gets
            // a non-NULL pointer (as an empty key does below).
            if let value {
                vu.u.mem.ptr = value.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) } ?? UnsafeMutableRawPointer(dummyPtr)
                vu.u.mem.size = value.count
            } else {
                vu.u.mem.ptr = nil
                vu.u.mem.size = 0
            }
            vus.append(vu)
            if let key {
                vu = rd_kafka_vu_t()
                vu.vtype = RD_KAFKA_VTYPE_KEY
                // Non-NULL pointer for an empty key: NULL would mean "no key".
                vu.u.mem.ptr = key.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) } ?? UnsafeMutableRawPointer(dummyPtr)
                vu.u.mem.size = key.count
                vus.append(vu)
            }
            if let timestampMs {
                vu = rd_kafka_vu_t()
                vu.vtype = RD_KAFKA_VTYPE_TIMESTAMP
                vu.u.i64 = timestampMs
                vus.append(vu)
            }
            var hdrs: OpaquePointer? = nil
            if !headers.isEmpty {
                hdrs = rd_kafka_headers_new(headers.count)
                for (name, value) in headers {
                    value.withUnsafeBytes { v in
                        _ = rd_kafka_header_add(hdrs, name, -1, v.baseAddress, v.count)
                    }
                }
                vu = rd_kafka_vu_t()
                vu.vtype = RD_KAFKA_VTYPE_HEADERS
                vu.u.headers = hdrs
                vus.append(vu)
            }
            try enqueue(&vus, headers: hdrs, topic: topic.name, partition: partition)
        }
    }

    private func enqueue(_ vus: inout [rd_kafka_vu_t], headers: OpaquePointer?, topic: String, partition: Int32?) throws(KafkaError) {
        let start = DispatchTime.now().uptimeNanoseconds
        var waitedMs: Int32 = 0
        while true {
            let error = vus.withUnsafeBufferPointer { rd_kafka_produceva(rk, $0.baseAddress, $0.count) }
            guard let error else { return }  // librdkafka owns `headers` now
            let code = rd_kafka_error_code(error)
            if code == RD_KAFKA_RESP_ERR__QUEUE_FULL && waitedMs < queueFullTimeoutMs {
                rd_kafka_error_destroy(error)
                rd_kafka_poll(rk, min(50, max(1, queueFullTimeoutMs - waitedMs)))
                waitedMs = Int32(clamping: (DispatchTime.now().uptimeNanoseconds - start) / 1_000_000)
                continue
            }
            if let headers { rd_kafka_headers_destroy(headers) }
            let where_ = partition.map { "\(topic)[\($0)]" } ?? topic
            if code == RD_KAFKA_RESP_ERR__FATAL {
                rd_kafka_error_destroy(error)
                throw KafkaError.fatalError(of: rk, context: "produce to \(where_)")
                    ?? KafkaError.from(code, context: "produce to \(where_)")
            }
            var e = KafkaError.consuming(error, context: "produce to \(where_)")
            if code == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                e.isRetriable = true
                e.message += " (still full after \(waitedMs) ms)"
            }
            throw e
        }
    }

    /// Serves delivery reports (and error callbacks); blocks up to `timeoutMs`
    /// when there is nothing to serve. Returns the number of events served.
    @discardableResult
    package func poll(timeoutMs: Int32 = 0) -> Int {
        Int(rd_kafka_poll(rk, timeoutMs))
    }

    /// Waits until every enqueued message is delivered or failed, serving
    /// delivery reports. Blocks up to `timeoutMs`.
    ///
    /// - Throws: the producer's fatal error; `_TIMED_OUT` (retriable) when
    ///   messages are still outstanding; or, when some messages failed delivery
    ///   and their errors have not been taken with `takeDeliveryErrors()`, the
    ///   first such error (message says how many).
    package func flush(timeoutMs: Int32) throws(KafkaError) {
        let err = rd_kafka_flush(rk, timeoutMs)
        if let fatal = KafkaError.fatalError(of: rk, context: "flush") { throw fatal }
        if let fatal = context.fatal() { throw fatal }
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            var e = KafkaError.from(err, context: "flush")
            e.message = "\(outstanding) message(s) still outstanding after \(timeoutMs) ms"
            e.isRetriable = true
            throw e
        }
        let (count, first) = context.pendingSummary()
        if count > 0, var first {
            first.message = "\(count) message(s) failed delivery since the last takeDeliveryErrors(); first: \(first.message)"
            throw first
        }
    }

    /// Messages enqueued or in flight, not yet delivered or failed (`rd_kafka_outq_len`).
    package var outstanding: Int { Int(rd_kafka_outq_len(rk)) }

    /// Messages that could not be delivered, since the producer was created.
    package var deliveryFailures: Int { context.failureCount }

    /// Messages acknowledged by the broker, since the producer was created.
    package var delivered: Int { context.deliveredCount }

    /// Returns and clears the pending delivery errors (at most the first 1000
    /// are kept between calls; `deliveryFailures` counts all).
    package func takeDeliveryErrors() -> [KafkaError] { context.takeErrors() }

    /// Tracks, for `topic`, the highest offset acknowledged per partition
    /// (from delivery reports). Call once, before producing to `topic`.
    package func watchDeliveredOffsets(topic: String) { context.watch(topic) }

    /// Per partition of the watched topic, the highest offset delivered so far
    /// (after `flush`, every record produced before it is included).
    package var deliveredHighOffsets: [Int32: Int64] { context.watchedHighOffsets() }

    /// Partition count of `topic` from metadata. Blocks up to `timeoutMs`.
    package func partitionCount(topic: String, timeoutMs: Int32 = 5000) throws(KafkaError) -> Int {
        let ctx = "read metadata of topic \(topic)"
        guard let n = try CInterop.partitionCount(rk, topic: topic, timeoutMs: timeoutMs, context: ctx) else {
            throw KafkaError(code: KafkaError.Code.unknownTopicOrPartition, message: "topic does not exist", context: ctx)
        }
        return n
    }

    /// The partition librdkafka's `murmur2_random` partitioner (and Kafka's
    /// Java default partitioner) picks for a keyed record:
    /// `(murmur2(key) & 0x7fffffff) % partitionCount`.
    package static func partition(forKey key: [UInt8], partitionCount: Int32) -> Int32 {
        key.withUnsafeBytes { Murmur2.partition($0, partitionCount: partitionCount) }
    }

    /// Same, for borrowed bytes.
    package static func partition(forKey key: UnsafeRawBufferPointer, partitionCount: Int32) -> Int32 {
        Murmur2.partition(key, partitionCount: partitionCount)
    }
}

/// Delivery and error state written by librdkafka callbacks (on the thread
/// calling poll/flush), read by the owner.
final class ProducerContext: @unchecked Sendable {
    // @unchecked Sendable: all state guarded by `lock`.
    private let lock = NSLock()
    private var errors: [KafkaError] = []
    private var pendingCount = 0
    private var failures = 0
    private var deliveries = 0
    private var fatalError: KafkaError? = nil
    /// The topic whose delivered offsets are tracked (C string, owned), if any.
    private(set) var watchedTopic: UnsafeMutablePointer<CChar>?
    private var watchedHigh: [Int32: Int64] = [:]

    deinit { free(watchedTopic) }

    func watch(_ topic: String) {
        lock.lock()
        free(watchedTopic)
        watchedTopic = strdup(topic)
        watchedHigh = [:]
        lock.unlock()
    }

    /// Called for each delivered record of the watched topic.
    func recordWatchedDelivery(partition: Int32, offset: Int64) {
        lock.lock()
        if offset > watchedHigh[partition, default: -1] { watchedHigh[partition] = offset }
        lock.unlock()
    }

    func watchedHighOffsets() -> [Int32: Int64] {
        lock.lock()
        defer { lock.unlock() }
        return watchedHigh
    }

    func recordDelivery(_ e: KafkaError?) {
        lock.lock()
        defer { lock.unlock() }
        if let e {
            failures += 1
            pendingCount += 1
            if errors.count < 1000 { errors.append(e) }
        } else {
            deliveries += 1
        }
    }

    func recordFatal(_ e: KafkaError) {
        lock.lock()
        if fatalError == nil { fatalError = e }
        lock.unlock()
    }

    func fatal() -> KafkaError? {
        lock.lock()
        defer { lock.unlock() }
        return fatalError
    }

    var failureCount: Int { lock.lock(); defer { lock.unlock() }; return failures }
    var deliveredCount: Int { lock.lock(); defer { lock.unlock() }; return deliveries }

    func pendingSummary() -> (Int, KafkaError?) {
        lock.lock()
        defer { lock.unlock() }
        return (pendingCount, errors.first)
    }

    func takeErrors() -> [KafkaError] {
        lock.lock()
        defer { lock.unlock() }
        let out = errors
        errors = []
        pendingCount = 0
        return out
    }
}

private let producerDeliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = { _, msg, opaque in
    guard let opaque, let msg else { return }
    let ctx = Unmanaged<ProducerContext>.fromOpaque(opaque).takeUnretainedValue()
    let m = msg.pointee
    if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        ctx.recordDelivery(nil)
        // Written before the producer is used; a plain read is enough here.
        if let watched = ctx.watchedTopic, let name = m.rkt.flatMap({ rd_kafka_topic_name($0) }), strcmp(name, watched) == 0 {
            ctx.recordWatchedDelivery(partition: m.partition, offset: m.offset)
        }
    } else {
        let topic = m.rkt.flatMap { rd_kafka_topic_name($0) }.map { String(cString: $0) } ?? "?"
        let part = m.partition == RD_KAFKA_PARTITION_UA ? "" : "[\(m.partition)]"
        ctx.recordDelivery(KafkaError.from(m.err, context: "deliver record to \(topic)\(part)"))
    }
}

private let producerErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = { rk, err, reason, opaque in
    guard let opaque, let rk else { return }
    let ctx = Unmanaged<ProducerContext>.fromOpaque(opaque).takeUnretainedValue()
    if rd_kafka_resp_err_t(rawValue: err) == RD_KAFKA_RESP_ERR__FATAL {
        let e = KafkaError.fatalError(of: rk, context: "producer background")
            ?? KafkaError(code: err, message: reason.map { String(cString: $0) } ?? "", isFatal: true, context: "producer background")
        ctx.recordFatal(e)
    }
    // Other errors (broker down, transport) are transient: librdkafka retries,
    // and undeliverable messages surface through delivery reports.
}
