import CRdKafka
import DequeModule
import Foundation

/// A consumer-group member with manual offsets (librdkafka high-level consumer).
///
/// Configuration applied on top of `KafkaConfig` (defaults can be overridden
/// by the config, forced ones cannot, because `poll` and the commit protocol
/// rely on them):
/// - defaults: `partition.assignment.strategy=cooperative-sticky`,
///   `auto.offset.reset=earliest`, `session.timeout.ms=6000` (Tansu's first
///   join otherwise waits ~23 s), `heartbeat.interval.ms=1000`.
/// - forced: `group.id`, `enable.auto.commit=false`,
///   `enable.auto.offset.store=false`, `enable.partition.eof=true`.
///
/// Threading: every method that talks to the broker blocks the calling thread
/// (documented per method); call them from a dedicated thread, never from
/// Swift's cooperative pool. `poll` and `close` must not run concurrently
/// (they serialise on a lock); rebalance callbacks run inside them, on that
/// thread. The other methods are safe from any thread (librdkafka handles are
/// thread-safe).
///
/// Ending a bounded run on Tansu: see `probeEndOffsets(config:partitions:timeoutMs:)`.
package final class KafkaConsumer: @unchecked Sendable {
    // @unchecked Sendable: `rk` is a thread-safe librdkafka handle; mutable
    // Swift state (topic cache, closed flag) is guarded by `pollLock`, and the
    // context's error list by its own lock.

    /// The subscription, in the order that defines `ConsumedRecord.topicIndex`.
    package let topics: [String]
    package let groupId: String

    private let rk: OpaquePointer
    private let context: ConsumerContext
    private let pollLock = NSRecursiveLock()
    private var closed = false
    /// rkt pointer → (topic index, topic name); small, linear search.
    private var topicCache: [(rkt: OpaquePointer, cname: UnsafeMutablePointer<CChar>, index: Int, name: String)] = []

    /// librdkafka fetch settings for a consumer that processes a stream as it
    /// arrives, applied by the stream processor and by `bench e2e`'s raw
    /// drain (so the ceiling is read the same way) where the configuration
    /// sets none:
    /// - `fetch.wait.max.ms=10`: a fetch the broker holds waits at most 10 ms
    ///   for more data (librdkafka's 500 ms would dominate freshness).
    /// - `fetch.queue.backoff.ms=10`: how long a partition's fetcher waits
    ///   when its prefetch queue is over `queued.min.messages`. With
    ///   librdkafka's 1 s a replay stalls: every partition fills its queue
    ///   in one or two fetches, then none fetches for a second while the
    ///   application drains them. Measured on the bench stream (Tansu, 1 M
    ///   records, 16 partitions): 187-244 k records/s with 1 s, 0.65-0.98 M
    ///   with 10 ms; `freshet bench e2e --only 1` at 3 M events went from
    ///   ~97 k to ~200 k events/s. librdkafka has it from 2.2.0 on (an
    ///   older one refuses the property, and keeps its fixed 1 s).
    /// - `queued.max.messages.kbytes=16384`: the prefetch queue's bound, a
    ///   quarter of librdkafka's 64 MiB. With 10 ms backoffs the queue is
    ///   refilled as it drains, so 16 MiB (about 0.8 s of the bench stream
    ///   at 200 k events/s) is enough; the default's extra 48 MiB showed as
    ///   peak RSS. `freshet bench e2e --only 1` (3 M events), three
    ///   alternating pairs: peak RSS 232-293 MiB with 64 MiB, 197-223 MiB
    ///   with 16 MiB, events/s no lower (175-224 k against 206-235 k).
    package static var streamingDefaults: [(key: String, value: String)] {
        streamingDefaults(librdkafkaVersion: LibrdkafkaVersion.number)
    }

    /// `config` with each of `streamingDefaults` it does not set itself.
    package static func withStreamingDefaults(_ config: KafkaConfig) -> KafkaConfig {
        var config = config
        for (key, value) in streamingDefaults where config[key] == nil { config[key] = value }
        return config
    }

    /// `streamingDefaults` for a librdkafka of `version` (`0xMMmmrrxx`).
    package static func streamingDefaults(librdkafkaVersion version: Int) -> [(key: String, value: String)] {
        var defaults = [(key: "fetch.wait.max.ms", value: "10"), (key: "queued.max.messages.kbytes", value: "16384")]
        if version >= LibrdkafkaVersion.fetchQueueBackoffSince { defaults.append((key: "fetch.queue.backoff.ms", value: "10")) }
        return defaults
    }

    /// Creates the consumer and subscribes to `topics` (non-blocking: the group
    /// join happens during `poll`).
    ///
    /// - Parameter rebalanceListener: called on assignment changes; held strongly.
    package init(config: KafkaConfig, groupId: String, topics: [String],
                rebalanceListener: (any RebalanceListener)? = nil) throws(KafkaError) {
        self.topics = topics
        self.groupId = groupId
        let ctxName = "create consumer for group \(groupId)"
        let conf = try config.makeConf(
            defaults: [
                "partition.assignment.strategy": "cooperative-sticky",
                "auto.offset.reset": "earliest",
                "session.timeout.ms": "6000",
                "heartbeat.interval.ms": "1000",
            ],
            forced: [
                "group.id": groupId,
                "enable.auto.commit": "false",
                "enable.auto.offset.store": "false",
                "enable.partition.eof": "true",
            ],
            context: ctxName)
        let context = ConsumerContext(listener: rebalanceListener)
        self.context = context
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf, consumerRebalanceCallback)
        rd_kafka_conf_set_error_cb(conf, consumerErrorCallback)
        self.rk = try CInterop.newClient(type: RD_KAFKA_CONSUMER, conf: conf, context: ctxName)
        rd_kafka_poll_set_consumer(rk)
        context.consumer = self

        let list = rd_kafka_topic_partition_list_new(Int32(max(topics.count, 1)))!  // never NULL: librdkafka aborts on OOM
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for t in topics { rd_kafka_topic_partition_list_add(list, t, RD_KAFKA_PARTITION_UA) }
        let err = rd_kafka_subscribe(rk, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            // Fully initialised, so deinit runs and destroys `rk` (no group to leave).
            closed = true
            throw KafkaError.from(err, context: "subscribe to \(topics.joined(separator: ","))")
        }
    }

    /// Group-less consumer for `assign`-style reading (used by `probeEndOffsets`).
    private init(unsubscribedConfig config: KafkaConfig, context ctxName: String) throws(KafkaError) {
        self.topics = []
        self.groupId = ""
        let conf = try config.makeConf(
            defaults: ["auto.offset.reset": "earliest"],
            forced: ["enable.auto.commit": "false", "enable.auto.offset.store": "false",
                     "enable.partition.eof": "true"],
            context: ctxName)
        let context = ConsumerContext(listener: nil)
        self.context = context
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_error_cb(conf, consumerErrorCallback)
        self.rk = try CInterop.newClient(type: RD_KAFKA_CONSUMER, conf: conf, context: ctxName)
        rd_kafka_poll_set_consumer(rk)
    }

    deinit {
        // Order: leave the group (listener disabled: `self` must not escape from
        // deinit), destroy the handle, then free our copies of topic names.
        if !closed {
            context.listenerEnabled = false
            _ = rd_kafka_consumer_close(rk)
        }
        rd_kafka_destroy(rk)
        for entry in topicCache { free(entry.cname) }
    }

    // MARK: - Polling

    /// Returns up to `maxRecords` records plus partition-end notices and
    /// non-fatal errors. Blocks up to `timeoutMs` for the first message, then
    /// takes only what is immediately available. Rebalance callbacks run inside.
    ///
    /// - Throws: a fatal `KafkaError` (the consumer is unusable).
    package func poll(maxRecords: Int, timeoutMs: Int32) throws(KafkaError) -> ConsumerPoll {
        var result = ConsumerPoll()
        result.records.reserveCapacity(min(maxRecords, 4096))
        try pollLoop(maxRecords: maxRecords, timeoutMs: timeoutMs,
                     endOfPartition: &result.endOfPartition, errors: &result.errors) { msg, index in
            let m = msg.pointee
            let name = resolveTopic(m.rkt).name
            let key: [UInt8]? = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
            let value: [UInt8] = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
            result.records.append(ConsumedRecord(
                topicIndex: index, topic: name, partition: m.partition, offset: m.offset,
                key: key, value: value, timestampMs: Self.timestamp(of: msg), headers: Self.headers(of: msg),
                valueIsNull: m.payload == nil))
        }
        return result
    }

    /// Like `poll`, but hands each record to `each` as a view into
    /// librdkafka's message, valid only during that call (no copy, no
    /// allocation per record; headers are not read). Records come in the
    /// order librdkafka delivers them, each before the next message is polled,
    /// so a rebalance callback runs after the records polled before it were
    /// handled. `each` runs on the calling thread with the poll lock held: it
    /// must not call `close`. Same blocking and error contract as `poll`.
    package func poll(maxRecords: Int, timeoutMs: Int32,
                      each: (ConsumedRecordView) -> Void) throws(KafkaError) -> ConsumerPollSummary {
        try poll(maxRecords: maxRecords, timeoutMs: timeoutMs, lookahead: 0, ahead: { _ in }, each: each)
    }

    /// `poll(maxRecords:timeoutMs:each:)` with a look-ahead: each record is
    /// also shown to `ahead` as soon as it is polled, up to `lookahead`
    /// records before `each` gets it, so a task can ask the cache for the
    /// state the record will need (`UserStatePrefetcher`). `ahead` must not
    /// change anything a record's processing reads. `each` still gets every
    /// record in poll order; the records held when a rebalance callback
    /// starts are handed to `each` first, so the callback still runs after
    /// the records polled before it were handled, and the poll hands out
    /// what it holds before it returns. On a fatal error the held records
    /// are released unhandled (not handled, so not committed: read again).
    package func poll(maxRecords: Int, timeoutMs: Int32, lookahead: Int,
                      ahead: (ConsumedRecordView) -> Void,
                      each: (ConsumedRecordView) -> Void) throws(KafkaError) -> ConsumerPollSummary {
        var summary = ConsumerPollSummary()
        var records = 0
        try pollLoop(maxRecords: maxRecords, timeoutMs: timeoutMs, holding: max(0, lookahead),
                     endOfPartition: &summary.endOfPartition, errors: &summary.errors,
                     onPolled: { msg, index in ahead(Self.view(msg, topicIndex: index)) }) { msg, index in
            each(Self.view(msg, topicIndex: index))
            records += 1
        }
        summary.records = records
        return summary
    }

    /// A record as a view into its librdkafka message.
    @inline(__always)
    private static func view(_ msg: UnsafeMutablePointer<rd_kafka_message_t>, topicIndex: Int) -> ConsumedRecordView {
        let m = msg.pointee
        let key = m.key.map { UnsafeRawBufferPointer(start: $0, count: m.key_len) }
        let value = UnsafeRawBufferPointer(start: m.payload, count: m.payload == nil ? 0 : m.len)
        return ConsumedRecordView(topicIndex: topicIndex, partition: m.partition, offset: m.offset, key: key,
                                  value: value, valueIsNull: m.payload == nil, timestampMs: timestamp(of: msg))
    }

    /// Like `poll`, but appends into reusable contiguous storage: no
    /// per-record allocation once the batch has grown to its working size.
    /// Call `batch.removeAll()` (keeps capacity) before reusing it. Headers are
    /// not kept (use `poll` when they matter). Same blocking and error contract
    /// as `poll`.
    package func poll(into batch: inout RecordBatch, maxRecords: Int, timeoutMs: Int32) throws(KafkaError) {
        if batch.topicNames.isEmpty { batch.topicNames = topics }
        // Moved out and back (no copy) so the closure can mutate `batch`.
        var eof = batch.endOfPartition
        var errors = batch.errors
        batch.endOfPartition = []
        batch.errors = []
        defer {
            batch.endOfPartition = eof
            batch.errors = errors
        }
        try pollLoop(maxRecords: maxRecords, timeoutMs: timeoutMs,
                     endOfPartition: &eof, errors: &errors) { msg, index in
            let name = resolveTopic(msg.pointee.rkt).name
            var ti = index
            if ti < 0 || ti >= batch.topicNames.count || batch.topicNames[ti] != name {
                ti = batch.topicNames.firstIndex(of: name) ?? {
                    batch.topicNames.append(name)
                    return batch.topicNames.count - 1
                }()
            }
            batch.append(msg.pointee, topicIndex: ti, timestampMs: Self.timestamp(of: msg))
        }
    }

    /// The shared poll loop: calls `onRecord` for each record (topic index in
    /// the subscription or -1); collects EOF notices and errors.
    /// With `holding` > 0, each record goes to `onPolled` when polled and to
    /// `onRecord` `holding` records later (see `poll(maxRecords:timeoutMs:lookahead:ahead:each:)`).
    private func pollLoop(maxRecords: Int, timeoutMs: Int32, holding: Int = 0,
                          endOfPartition: inout [PartitionEndEvent], errors: inout [KafkaError],
                          onPolled: (UnsafeMutablePointer<rd_kafka_message_t>, Int) -> Void = { _, _ in },
                          onRecord: (UnsafeMutablePointer<rd_kafka_message_t>, Int) -> Void) throws(KafkaError) {
        pollLock.lock()
        defer { pollLock.unlock() }
        guard !closed else {
            throw KafkaError(code: KafkaError.Code.state, message: "consumer is closed", context: "poll")
        }
        try withoutActuallyEscaping(onRecord) { (onRecord) throws(KafkaError) in
            let held = HeldMessages(handOut: onRecord)
            if holding > 0 { context.beforeRebalance = held.handOutAll }
            defer {
                context.beforeRebalance = nil
                held.releaseUnhandled()
            }
            try pollMessages(maxRecords: maxRecords, timeoutMs: timeoutMs, holding: holding, held: held,
                             endOfPartition: &endOfPartition, errors: &errors, onPolled: onPolled)
            held.handOutAll()
        }
        for e in context.takeErrors() {
            if e.isFatal {
                throw KafkaError.fatalError(of: rk, context: e.context) ?? e
            }
            errors.append(e)
        }
    }

    /// `pollLoop`'s loop over librdkafka's messages (the poll lock held).
    private func pollMessages(maxRecords: Int, timeoutMs: Int32, holding: Int, held: HeldMessages,
                              endOfPartition: inout [PartitionEndEvent], errors: inout [KafkaError],
                              onPolled: (UnsafeMutablePointer<rd_kafka_message_t>, Int) -> Void) throws(KafkaError) {
        var records = 0
        var timeout = timeoutMs
        var iterations = 0
        let maxIterations = maxRecords + 1024
        while records < maxRecords && iterations < maxIterations {
            iterations += 1
            guard let msg = rd_kafka_consumer_poll(rk, timeout) else { break }
            timeout = 0
            let m = msg.pointee
            if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                let index = topicIndex(m.rkt)
                records += 1
                if holding > 0 {
                    onPolled(msg, index)
                    held.append(msg, topicIndex: index)
                    if held.count > holding { held.handOutOldest() }
                } else {
                    held.handOut(msg, index)
                    rd_kafka_message_destroy(msg)
                }
                continue
            }
            defer { rd_kafka_message_destroy(msg) }
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                let name = resolveTopic(m.rkt).name
                endOfPartition.append(PartitionEndEvent(
                    topicPartition: TopicPartition(topic: name, partition: m.partition), offset: m.offset))
            } else if m.err == RD_KAFKA_RESP_ERR__FATAL {
                throw KafkaError.fatalError(of: rk, context: "poll")
                    ?? KafkaError.from(m.err, context: "poll")
            } else {
                let name = m.rkt.flatMap { rd_kafka_topic_name($0) }.map { String(cString: $0) }
                let what = name.map { "consume \($0)[\(m.partition)]" } ?? "consume"
                errors.append(KafkaError.from(m.err, message: Self.messageText(m), context: what))
            }
        }
    }

    private static func timestamp(of msg: UnsafeMutablePointer<rd_kafka_message_t>) -> Int64? {
        var tsType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let t = rd_kafka_message_timestamp(msg, &tsType)
        return tsType != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && t >= 0 ? t : nil
    }

    private static func messageText(_ m: rd_kafka_message_t) -> String {
        if let p = m.payload, m.len > 0 {
            let bytes = UnsafeRawBufferPointer(start: p, count: m.len)
            return String(decoding: bytes, as: UTF8.self)
        }
        return String(cString: rd_kafka_err2str(m.err))
    }

    private static func headers(of msg: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var hdrs: OpaquePointer? = nil
        guard rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return [] }
        var out: [KafkaHeader] = []
        var idx = 0
        while true {
            var name: UnsafePointer<CChar>? = nil
            var val: UnsafeRawPointer? = nil
            var size = 0
            guard rd_kafka_header_get_all(hdrs, idx, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else { break }
            let n = name.map { String(cString: $0) } ?? ""
            out.append(KafkaHeader(name: n, value: val.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }))
            idx += 1
        }
        return out
    }

    /// `resolveTopic(rkt).index` without touching the name (per record).
    @inline(__always)
    private func topicIndex(_ rkt: OpaquePointer?) -> Int {
        if let rkt, let cname = rd_kafka_topic_name(rkt), let at = cachedTopic(rkt, cname) { return topicCache[at].index }
        return resolveTopic(rkt).index
    }

    /// The position in `topicCache` of the entry for this handle and name.
    @inline(__always)
    private func cachedTopic(_ rkt: OpaquePointer, _ cname: UnsafePointer<CChar>) -> Int? {
        topicCache.firstIndex { $0.rkt == rkt && strcmp(cname, $0.cname) == 0 }
    }

    private func resolveTopic(_ rkt: OpaquePointer?) -> (index: Int, name: String) {
        guard let rkt, let cname = rd_kafka_topic_name(rkt) else { return (-1, "") }
        if let at = cachedTopic(rkt, cname) { return (topicCache[at].index, topicCache[at].name) }
        let name = String(cString: cname)
        let index = topics.firstIndex(of: name) ?? -1
        if let copy = strdup(cname) {
            topicCache.removeAll { $0.rkt == rkt && { free($0.cname); return true }($0) }
            topicCache.append((rkt, copy, index, name))
        }
        return (index, name)
    }

    // MARK: - Offsets

    /// Commits `offsets` (each the NEXT offset to read) for this group.
    /// Synchronous commits block until the broker answers; asynchronous ones
    /// return at once and their failures are not reported (a later synchronous
    /// commit supersedes them).
    package func commit(_ offsets: [TopicPartition: Int64], synchronous: Bool = true) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = CInterop.makeList(offsets: offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let ctx = "commit offsets for group \(groupId)"
        let err = rd_kafka_commit(rk, list, synchronous ? 0 : 1)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: ctx) }
        if synchronous, let e = CInterop.firstError(list, context: ctx) { throw e }
    }

    /// The group's committed offsets (next offset to read); partitions without
    /// a committed offset are absent. Blocks up to `timeoutMs`.
    package func committedOffsets(for partitions: [TopicPartition], timeoutMs: Int32 = 5000) throws(KafkaError) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let list = CInterop.makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let ctx = "fetch committed offsets for group \(groupId)"
        let err = rd_kafka_committed(rk, list, timeoutMs)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: ctx) }
        var out: [TopicPartition: Int64] = [:]
        for e in CInterop.entries(list) {
            if e.err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(e.err, context: "\(ctx) (\(e.tp))") }
            if e.offset >= 0 { out[e.tp] = e.offset }
        }
        return out
    }

    /// Current fetch positions (offset of the next record `poll` returns) of
    /// assigned partitions; absent when unknown. Non-blocking.
    package func positions(for partitions: [TopicPartition]) throws(KafkaError) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let list = CInterop.makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_position(rk, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "read positions") }
        var out: [TopicPartition: Int64] = [:]
        for e in CInterop.entries(list) where e.offset >= 0 { out[e.tp] = e.offset }
        return out
    }

    /// Moves the fetch position of an assigned partition. Blocks up to
    /// `timeoutMs` (0: asynchronous). Records already fetched for the old
    /// position are discarded by librdkafka.
    package func seek(_ partition: TopicPartition, offset: Int64, timeoutMs: Int32 = 5000) throws(KafkaError) {
        let list = CInterop.makeList([partition], offsets: [partition: offset])
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let ctx = "seek \(partition) to \(offset)"
        if let error = rd_kafka_seek_partitions(rk, list, timeoutMs) {
            throw KafkaError.consuming(error, context: ctx)
        }
        if let e = CInterop.firstError(list, context: ctx) { throw e }
    }

    /// Stops fetching the partitions (assignment kept). Non-blocking.
    package func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        guard !partitions.isEmpty else { return }
        let list = CInterop.makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_pause_partitions(rk, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "pause \(partitions)") }
        if let e = CInterop.firstError(list, context: "pause") { throw e }
    }

    /// Resumes fetching paused partitions. Non-blocking.
    package func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        guard !partitions.isEmpty else { return }
        let list = CInterop.makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_resume_partitions(rk, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "resume \(partitions)") }
        if let e = CInterop.firstError(list, context: "resume") { throw e }
    }

    /// The current assignment, sorted. Non-blocking.
    package func assignment() -> [TopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>? = nil
        guard rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return CInterop.partitions(list).sorted()
    }

    /// Assigns partitions directly, without the group (only for consumers
    /// used without rebalance semantics, e.g. probes). `offsets` default to
    /// the committed offset / `auto.offset.reset`.
    func assignDirect(_ partitions: [TopicPartition], offsets: [TopicPartition: Int64]) throws(KafkaError) {
        let list = CInterop.makeList(partitions, offsets: offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_assign(rk, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "assign \(partitions)") }
    }

    /// The partition's high watermark (end offset: the offset of the next
    /// record to be written) as last reported by a Fetch response, or nil
    /// before the first Fetch response for it. Non-blocking. Correct on Tansu,
    /// unlike ListOffsets(latest).
    package func cachedHighWatermark(_ partition: TopicPartition) -> Int64? {
        var lo: Int64 = -1
        var hi: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(rk, partition.topic, partition.partition, &lo, &hi)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, hi >= 0 else { return nil }
        return hi
    }

    /// The earliest offset the broker still retains for `partition` (its log
    /// start offset: 0 unless retention or DeleteRecords removed a prefix),
    /// from ListOffsets(earliest). Blocks up to `timeoutMs`. (Only the low end
    /// of the query is used: Tansu answers ListOffsets(latest) wrongly.)
    package func earliestOffset(_ partition: TopicPartition, timeoutMs: Int32 = 5000) throws(KafkaError) -> Int64 {
        var lo: Int64 = -1
        var hi: Int64 = -1
        let err = rd_kafka_query_watermark_offsets(rk, partition.topic, partition.partition, &lo, &hi, Int32(timeoutMs))
        let ctx = "query the earliest retained offset of \(partition)"
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: ctx) }
        // An unknown answer must not pass for "retained from offset 0".
        guard lo >= 0 else {
            throw KafkaError(code: KafkaError.Code.unknownTopicOrPartition, message: "the broker answered no earliest offset (\(lo))", context: ctx)
        }
        return lo
    }

    // MARK: - Group

    /// This member's id in the group (empty before the first join). Non-blocking.
    package var memberId: String {
        guard let p = rd_kafka_memberid(rk) else { return "" }
        defer { rd_kafka_mem_free(rk, p) }
        return String(cString: p)
    }

    /// The group generation this member last joined, when the loaded librdkafka
    /// exposes it (2.1+; looked up at run time since the 2.0.2 headers lack it).
    package var generationId: Int32? {
        guard let getter = GroupMetadataSymbols.generationId, let md = rd_kafka_consumer_group_metadata(rk) else { return nil }
        defer { rd_kafka_consumer_group_metadata_destroy(md) }
        return getter(UnsafeRawPointer(md))
    }

    /// "COOPERATIVE", "EAGER" or "NONE" (not yet joined).
    package var rebalanceProtocol: String {
        rd_kafka_rebalance_protocol(rk).map { String(cString: $0) } ?? "NONE"
    }

    /// Number of partitions of `topic` from broker metadata. Blocks up to `timeoutMs`.
    /// - Throws: `KafkaError` with code `unknownTopicOrPartition` when the topic does not exist.
    package func partitionCount(topic: String, timeoutMs: Int32 = 5000) throws(KafkaError) -> Int {
        let ctx = "read metadata of topic \(topic)"
        guard let n = try CInterop.partitionCount(rk, topic: topic, timeoutMs: timeoutMs, context: ctx) else {
            throw KafkaError(code: KafkaError.Code.unknownTopicOrPartition, message: "topic does not exist", context: ctx)
        }
        return n
    }

    // MARK: - Closing

    /// Leaves the group: revokes the assignment (running
    /// `RebalanceListener.partitionsRevoked`, where the owner commits), then
    /// stops. Blocks until done (bounded by the session timeout). Idempotent.
    package func close() throws(KafkaError) {
        pollLock.lock()
        defer { pollLock.unlock() }
        guard !closed else { return }
        closed = true
        let err = rd_kafka_consumer_close(rk)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError.from(err, context: "close consumer of group \(groupId)") }
    }

    // MARK: - End offsets

    /// End offsets of `partitions` as of now, read the way that is correct on
    /// Tansu.
    ///
    /// Tansu answers ListOffsets(latest) with the base offset of the newest
    /// batch + 1 instead of the log end offset, so `OFFSET_END`,
    /// `rd_kafka_query_watermark_offsets` and any "seek to end" are wrong there.
    /// Fetch responses do carry the true high watermark. This probe therefore
    /// creates a short-lived group-less consumer, assigns every partition at the
    /// beginning, polls until a Fetch response has reported the high watermark
    /// of each one (`rd_kafka_get_watermark_offsets`, or a partition-EOF event),
    /// and returns those. It reads at most one fetch worth of data per partition
    /// and commits nothing.
    ///
    /// For `--stop-at-end`, call this once at start-up for every partition of
    /// the input topics (not only the ones assigned to this instance, since
    /// partitions can move in later), then treat a partition as finished when
    /// its consumed position reaches the probed offset (the last record has
    /// offset `end - 1`; an empty partition is finished at once). A
    /// partition-EOF event with `offset >= end` also means finished.
    ///
    /// Blocks up to `timeoutMs`.
    package static func probeEndOffsets(config: KafkaConfig, partitions: [TopicPartition],
                                       timeoutMs: Int32 = 10_000) throws(KafkaError) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        var probeConfig = config
        // librdkafka refuses assign() without a group.id (_UNKNOWN_GROUP); this
        // throwaway group is never joined (no subscribe) and never committed to.
        probeConfig.properties["group.id"] = "freshet-end-offset-probe-\(UUID().uuidString)"
        probeConfig.properties["max.partition.fetch.bytes"] = "1024"
        probeConfig.properties["fetch.wait.max.ms"] = "10"
        // Keep librdkafka from prefetching whole partitions in the background.
        probeConfig.properties["queued.min.messages"] = "1"
        probeConfig.properties["queued.max.messages.kbytes"] = "1"
        let probe = try KafkaConsumer(unsubscribedConfig: probeConfig, context: "create end-offset probe")
        let offsets = Dictionary(uniqueKeysWithValues: partitions.map { ($0, KafkaOffset.beginning) })
        try probe.assignDirect(partitions, offsets: offsets)
        var found: [TopicPartition: Int64] = [:]
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(timeoutMs, 0)) * 1_000_000
        var lastError: KafkaError? = nil
        while true {
            for tp in partitions where found[tp] == nil {
                if let hi = probe.cachedHighWatermark(tp) { found[tp] = hi }
            }
            if found.count == partitions.count { break }
            if DispatchTime.now().uptimeNanoseconds >= deadline {
                let missing = partitions.filter { found[$0] == nil }.map(\.description).joined(separator: ", ")
                throw KafkaError(code: KafkaError.Code.timedOut,
                                 message: "no Fetch response within \(timeoutMs) ms for \(missing)"
                                     + (lastError.map { "; last error: \($0)" } ?? ""),
                                 isRetriable: true, context: "probe end offsets")
            }
            let batch = try probe.poll(maxRecords: 10_000, timeoutMs: 50)
            for eof in batch.endOfPartition where found[eof.topicPartition] == nil {
                found[eof.topicPartition] = eof.offset
            }
            if let e = batch.errors.last { lastError = e }
        }
        probe.closed = true  // group-less: nothing to leave
        return found
    }

    /// Reads every record (headers included) from each partition's start offset
    /// up to its end as of the read, without joining a group. Blocks up to
    /// `timeoutMs`; throws a retriable timeout when a partition's end is not
    /// reached by then.
    package static func readToEnd(config: KafkaConfig, from starts: [TopicPartition: Int64],
                                 timeoutMs: Int32 = 30_000) throws(KafkaError) -> [ConsumedRecord] {
        guard !starts.isEmpty else { return [] }
        var readerConfig = config
        // A throwaway group id: librdkafka requires one for assign(); never joined or committed.
        readerConfig.properties["group.id"] = "freshet-range-reader-\(UUID().uuidString)"
        let reader = try KafkaConsumer(unsubscribedConfig: readerConfig, context: "create range reader")
        defer { reader.closed = true } // group-less: nothing to leave
        try reader.assignDirect(Array(starts.keys), offsets: starts)
        var records: [ConsumedRecord] = []
        var ended: Set<TopicPartition> = []
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(timeoutMs, 0)) * 1_000_000
        while ended.count < starts.count {
            if DispatchTime.now().uptimeNanoseconds >= deadline {
                throw KafkaError(code: KafkaError.Code.timedOut, message: "end not reached within \(timeoutMs) ms",
                                 isRetriable: true, context: "read \(starts.keys.map(\.description).sorted())")
            }
            let batch = try reader.poll(maxRecords: 10_000, timeoutMs: 100)
            records += batch.records
            for eof in batch.endOfPartition { ended.insert(eof.topicPartition) }
            // A start past the end is never reached: say so now, not at the deadline.
            for (tp, start) in starts where start >= 0 && !ended.contains(tp) {
                if let end = reader.cachedHighWatermark(tp), end < start {
                    throw KafkaError(code: KafkaError.Code.invalidArgument,
                                     message: "offset \(start) is past the partition's end \(end) (was the topic recreated or truncated?)",
                                     context: "read \(tp)")
                }
            }
        }
        return records
    }

    /// All partitions of `topics` (via metadata), then `probeEndOffsets`.
    package static func probeEndOffsets(config: KafkaConfig, topics: [String],
                                       timeoutMs: Int32 = 10_000) throws(KafkaError) -> [TopicPartition: Int64] {
        let admin = try KafkaAdmin(config: config)
        var parts: [TopicPartition] = []
        for t in topics {
            guard let n = try admin.partitionCount(topic: t, timeoutMs: timeoutMs) else {
                throw KafkaError(code: KafkaError.Code.unknownTopicOrPartition, message: "topic does not exist",
                                 context: "probe end offsets of \(t)")
            }
            parts += (0..<Int32(n)).map { TopicPartition(topic: t, partition: $0) }
        }
        return try probeEndOffsets(config: config, partitions: parts, timeoutMs: timeoutMs)
    }

    // MARK: - Rebalance (called from the C callback on the polling thread)

    fileprivate func handleRebalance(_ err: rd_kafka_resp_err_t,
                                     _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?,
                                     listener: (any RebalanceListener)?) {
        let cooperative = rebalanceProtocol == "COOPERATIVE"
        let parts = CInterop.partitions(list)
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            if let listener, let list {
                let starts = listener.partitionsAssigned(parts, consumer: self)
                if !starts.isEmpty, let elems = list.pointee.elems {
                    for i in 0..<Int(list.pointee.cnt) {
                        let tp = TopicPartition(topic: String(cString: elems[i].topic), partition: elems[i].partition)
                        if let off = starts[tp] { elems[i].offset = off }
                    }
                }
            }
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, list) {
                    context.append(KafkaError.consuming(error, context: "incremental assign \(parts)"))
                }
            } else {
                let e = rd_kafka_assign(rk, list)
                if e != RD_KAFKA_RESP_ERR_NO_ERROR { context.append(KafkaError.from(e, context: "assign \(parts)")) }
            }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            if let listener {
                if rd_kafka_assignment_lost(rk) != 0 {
                    listener.partitionsLost(parts, consumer: self)
                } else {
                    listener.partitionsRevoked(parts, consumer: self)
                }
            }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) {
                    context.append(KafkaError.consuming(error, context: "incremental unassign \(parts)"))
                }
            } else {
                _ = rd_kafka_assign(rk, nil)
            }
        default:
            context.append(KafkaError.from(err, context: "rebalance"))
            _ = rd_kafka_assign(rk, nil)
        }
    }

    /// Assignment without a `KafkaConsumer` (during deinit): no listener calls.
    fileprivate static func handleRebalanceBare(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t,
                                                _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let cooperative = rd_kafka_rebalance_protocol(rk).map { String(cString: $0) } == "COOPERATIVE"
        if err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            if cooperative { rd_kafka_incremental_assign(rk, list).map { rd_kafka_error_destroy($0) } } else { _ = rd_kafka_assign(rk, list) }
        } else {
            if cooperative && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                rd_kafka_incremental_unassign(rk, list).map { rd_kafka_error_destroy($0) }
            } else {
                _ = rd_kafka_assign(rk, nil)
            }
        }
    }
}

/// State shared with the C callbacks through the opaque pointer. Owned by the
/// consumer, which destroys the librdkafka handle before releasing it.
final class ConsumerContext: @unchecked Sendable {
    // @unchecked Sendable: `errors` is guarded by `lock`; `consumer`, `listener`
    // and `listenerEnabled` are set before polling starts / in deinit.
    weak var consumer: KafkaConsumer?
    let listener: (any RebalanceListener)?
    var listenerEnabled = true
    /// Set by a poll that holds records (look-ahead): hands them out, so a
    /// rebalance callback runs after the records polled before it.
    var beforeRebalance: (() -> Void)?
    private let lock = NSLock()
    private var errors: [KafkaError] = []

    init(listener: (any RebalanceListener)?) {
        self.listener = listener
    }

    func append(_ e: KafkaError) {
        lock.lock()
        errors.append(e)
        lock.unlock()
    }

    func takeErrors() -> [KafkaError] {
        lock.lock()
        defer { lock.unlock() }
        let out = errors
        errors = []
        return out
    }
}

private let consumerRebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = { rk, err, list, opaque in
    guard let rk else { return }
    guard let opaque else {
        KafkaConsumer.handleRebalanceBare(rk, err, list)
        return
    }
    let ctx = Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue()
    ctx.beforeRebalance?()
    if ctx.listenerEnabled, let consumer = ctx.consumer {
        consumer.handleRebalance(err, list, listener: ctx.listener)
    } else {
        KafkaConsumer.handleRebalanceBare(rk, err, list)
    }
}

private let consumerErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = { rk, err, reason, opaque in
    guard let opaque else { return }
    let ctx = Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue()
    let code = rd_kafka_resp_err_t(rawValue: err)
    let msg = reason.map { String(cString: $0) } ?? ""
    var e = KafkaError.from(code, message: msg, context: "consumer background")
    if code == RD_KAFKA_RESP_ERR__FATAL { e.isFatal = true }
    ctx.append(e)
}

/// Symbols newer than the 2.0.2 headers, resolved in the loaded librdkafka.
enum GroupMetadataSymbols {
    typealias GenerationIdFn = @convention(c) (UnsafeRawPointer) -> Int32
    static let generationId: GenerationIdFn? = {
        guard let handle = dlopen(nil, RTLD_NOW),
              let sym = dlsym(handle, "rd_kafka_consumer_group_metadata_generation_id") else { return nil }
        return unsafeBitCast(sym, to: GenerationIdFn.self)
    }()
}

/// The records a look-ahead poll has shown but not yet handed out, oldest
/// first (a few: the look-ahead distance). Used on the polling thread only,
/// within one poll. A deque, not an array: the oldest leaves at every record,
/// and an array's `removeFirst` moved the rest (and retained a topic name
/// per record; the fast path never reads it).
private final class HeldMessages {
    typealias Message = UnsafeMutablePointer<rd_kafka_message_t>
    let handOut: (Message, Int) -> Void
    private var messages = Deque<(message: Message, topicIndex: Int)>()

    init(handOut: @escaping (Message, Int) -> Void) {
        self.handOut = handOut
    }

    var count: Int { messages.count }

    func append(_ message: Message, topicIndex: Int) {
        messages.append((message, topicIndex))
    }

    /// Hands the oldest held record out and releases its message.
    func handOutOldest() {
        guard let oldest = messages.popFirst() else { return }
        handOut(oldest.message, oldest.topicIndex)
        rd_kafka_message_destroy(oldest.message)
    }

    /// Hands every held record out, oldest first.
    func handOutAll() {
        while !messages.isEmpty { handOutOldest() }
    }

    /// Releases what is still held without handing it out (a fatal error ended the poll).
    func releaseUnhandled() {
        for held in messages { rd_kafka_message_destroy(held.message) }
        messages.removeAll()
    }
}
