import CRdKafka

/// Helpers for crossing the C boundary. Internal: nothing above this module
/// sees an `rd_kafka_*` type.
enum CInterop {
    /// Builds an `rd_kafka_topic_partition_list_t` (caller destroys it).
    static func makeList(_ parts: [TopicPartition], offsets: [TopicPartition: Int64] = [:]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(max(parts.count, 1)))!  // never NULL: librdkafka aborts on OOM
        for tp in parts {
            let el = rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)!
            if let off = offsets[tp] { el.pointee.offset = off }
        }
        return list
    }

    static func makeList(offsets: [TopicPartition: Int64]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        makeList(offsets.keys.sorted(), offsets: offsets)
    }

    /// Reads a list into Swift values: (partition, offset, error code).
    static func entries(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [(tp: TopicPartition, offset: Int64, err: rd_kafka_resp_err_t)] {
        guard let list, let elems = list.pointee.elems else { return [] }
        var out: [(tp: TopicPartition, offset: Int64, err: rd_kafka_resp_err_t)] = []
        out.reserveCapacity(Int(list.pointee.cnt))
        for i in 0..<Int(list.pointee.cnt) {
            let e = elems[i]
            let topic = e.topic.map { String(cString: $0) } ?? ""
            out.append((TopicPartition(topic: topic, partition: e.partition), e.offset, e.err))
        }
        return out
    }

    static func partitions(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [TopicPartition] {
        entries(list).map(\.tp)
    }

    /// First per-partition error of a list, if any.
    static func firstError(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>, context: String) -> KafkaError? {
        for e in entries(list) where e.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            return KafkaError.from(e.err, context: "\(context) (\(e.tp))")
        }
        return nil
    }

    static func errorString(_ buf: [CChar]) -> String {
        buf.withUnsafeBufferPointer { p in
            guard let base = p.baseAddress else { return "" }
            return String(cString: base)
        }
    }

    /// Creates a client; on failure the conf is destroyed.
    static func newClient(type: rd_kafka_type_t, conf: OpaquePointer, context: String) throws(KafkaError) -> OpaquePointer {
        var errbuf = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(type, conf, &errbuf, errbuf.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: KafkaError.Code.invalidArgument, message: errorString(errbuf), context: context)
        }
        return rk
    }

    /// Metadata for all topics: topic → (partition count, topic error).
    static func metadata(_ rk: OpaquePointer, timeoutMs: Int32, context: String) throws(KafkaError) -> [String: (partitions: Int, err: rd_kafka_resp_err_t)] {
        var md: UnsafePointer<rd_kafka_metadata>? = nil
        let err = rd_kafka_metadata(rk, 1, nil, &md, Int32(timeoutMs))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let md else {
            throw KafkaError.from(err, context: context)
        }
        defer { rd_kafka_metadata_destroy(md) }
        var out: [String: (partitions: Int, err: rd_kafka_resp_err_t)] = [:]
        if let topics = md.pointee.topics {
            for i in 0..<Int(md.pointee.topic_cnt) {
                let t = topics[i]
                guard let name = t.topic.map({ String(cString: $0) }) else { continue }
                out[name] = (Int(t.partition_cnt), t.err)
            }
        }
        return out
    }

    /// Partition count of one topic, nil when the broker does not know it.
    static func partitionCount(_ rk: OpaquePointer, topic: String, timeoutMs: Int32, context: String) throws(KafkaError) -> Int? {
        let all = try metadata(rk, timeoutMs: timeoutMs, context: context)
        guard let entry = all[topic] else { return nil }
        if entry.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || entry.err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC {
            return nil
        }
        if entry.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(entry.err, context: context)
        }
        return entry.partitions
    }
}
