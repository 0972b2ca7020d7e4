import CRdKafka
import Foundation

/// A topic to create.
package struct NewTopic: Sendable, Hashable {
    package var name: String
    package var partitions: Int32
    package var replicationFactor: Int32
    /// Topic configs (`cleanup.policy`, `retention.ms`, ...). Tansu ignores them.
    package var configs: [String: String]

    package init(name: String, partitions: Int32, replicationFactor: Int32 = 1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }

    package init(_ name: String, _ partitions: Int32, replicationFactor: Int32 = 1, configs: [String: String] = [:]) {
        self.init(name: name, partitions: partitions, replicationFactor: replicationFactor, configs: configs)
    }
}

/// Topic administration (CreateTopics, metadata). All methods block the
/// calling thread up to their timeout.
package final class KafkaAdmin: @unchecked Sendable {
    // @unchecked Sendable: only holds a thread-safe librdkafka handle.
    private let rk: OpaquePointer

    package init(config: KafkaConfig) throws(KafkaError) {
        let conf = try config.makeConf(defaults: [:], forced: [:], context: "create admin client")
        rk = try CInterop.newClient(type: RD_KAFKA_PRODUCER, conf: conf, context: "create admin client")
    }

    deinit {
        rd_kafka_destroy(rk)
    }

    /// Creates the topics; a topic that already exists counts as success
    /// (its partition count is not checked: use `partitionCount(topic:)`).
    /// Blocks up to `timeoutMs`.
    package func createTopics(_ topics: [NewTopic], timeoutMs: Int32 = 10_000) throws(KafkaError) {
        guard !topics.isEmpty else { return }
        let names = topics.map(\.name).joined(separator: ",")
        let ctx = "create topic \(names)"
        var errbuf = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer] = []
        defer { for t in newTopics { rd_kafka_NewTopic_destroy(t) } }
        for t in topics {
            guard let nt = rd_kafka_NewTopic_new(t.name, t.partitions, t.replicationFactor, &errbuf, errbuf.count) else {
                throw KafkaError(code: KafkaError.Code.invalidArgument, message: CInterop.errorString(errbuf),
                                 context: "create topic \(t.name)")
            }
            newTopics.append(nt)
            for (k, v) in t.configs.sorted(by: { $0.key < $1.key }) {
                let err = rd_kafka_NewTopic_set_config(nt, k, v)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    throw KafkaError.from(err, context: "create topic \(t.name): config \(k)")
                }
            }
        }
        guard let queue = rd_kafka_queue_new(rk) else {
            throw KafkaError(code: KafkaError.Code.fatal, message: "rd_kafka_queue_new failed", context: ctx)
        }
        defer { rd_kafka_queue_destroy(queue) }
        guard let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS) else {
            throw KafkaError(code: KafkaError.Code.fatal, message: "rd_kafka_AdminOptions_new failed", context: ctx)
        }
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeoutMs, &errbuf, errbuf.count)
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMs, &errbuf, errbuf.count)

        var topicPtrs: [OpaquePointer?] = newTopics
        topicPtrs.withUnsafeMutableBufferPointer { buf in
            rd_kafka_CreateTopics(rk, buf.baseAddress, buf.count, options, queue)
        }
        // The result event arrives on `queue`; allow a little beyond the request timeout.
        guard let event = rd_kafka_queue_poll(queue, timeoutMs + 1000) else {
            throw KafkaError(code: KafkaError.Code.timedOut, message: "no CreateTopics result within \(timeoutMs) ms",
                             isRetriable: true, context: ctx)
        }
        defer { rd_kafka_event_destroy(event) }
        let evErr = rd_kafka_event_error(event)
        if evErr != RD_KAFKA_RESP_ERR_NO_ERROR {
            let msg = rd_kafka_event_error_string(event).map { String(cString: $0) }
            throw KafkaError.from(evErr, message: msg, context: ctx)
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else {
            throw KafkaError(code: KafkaError.Code.fatal, message: "unexpected admin event", context: ctx)
        }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return }
        for i in 0..<count {
            guard let r = results[i] else { continue }
            let err = rd_kafka_topic_result_error(r)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { continue }
            let name = rd_kafka_topic_result_name(r).map { String(cString: $0) } ?? "?"
            let msg = rd_kafka_topic_result_error_string(r).map { String(cString: $0) }
            throw KafkaError.from(err, message: msg, context: "create topic \(name)")
        }
    }

    /// Partition count of `topic`, nil when it does not exist. Blocks up to `timeoutMs`.
    package func partitionCount(topic: String, timeoutMs: Int32 = 5000) throws(KafkaError) -> Int? {
        try CInterop.partitionCount(rk, topic: topic, timeoutMs: timeoutMs, context: "read metadata of topic \(topic)")
    }

    /// Names of all topics the broker reports, sorted. Blocks up to `timeoutMs`.
    package func listTopics(timeoutMs: Int32 = 5000) throws(KafkaError) -> [String] {
        let md = try CInterop.metadata(rk, timeoutMs: timeoutMs, context: "list topics")
        return md.filter { $0.value.err == RD_KAFKA_RESP_ERR_NO_ERROR }.keys.sorted()
    }

    /// Creates the topics, then waits (bounded) until metadata shows each of
    /// them, so that producers and consumers started next see them.
    package func ensureTopics(_ topics: [NewTopic], timeoutMs: Int32 = 10_000) throws(KafkaError) {
        try createTopics(topics, timeoutMs: timeoutMs)
        for _ in 0..<50 {
            let md = try CInterop.metadata(rk, timeoutMs: timeoutMs, context: "wait for topics")
            if topics.allSatisfy({ md[$0.name].map { $0.err == RD_KAFKA_RESP_ERR_NO_ERROR && $0.partitions > 0 } ?? false }) {
                return
            }
            usleep(100_000)
        }
        throw KafkaError(code: KafkaError.Code.timedOut, message: "topics not visible in metadata",
                         isRetriable: true, context: "create topics \(topics.map(\.name))")
    }
}
