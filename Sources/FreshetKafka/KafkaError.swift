import CRdKafka

/// An error raised by the Kafka layer.
///
/// `code` is the raw `rd_kafka_resp_err_t` value (negative values are
/// librdkafka-internal errors such as `_TIMED_OUT` = -185, positive values are
/// Kafka protocol errors such as `TOPIC_ALREADY_EXISTS` = 36). Only errors with
/// `isFatal == true` should stop the process; retriable ones may be retried by
/// the caller.
package struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// Raw `rd_kafka_resp_err_t` value.
    package var code: Int32
    /// Symbolic name of `code` (`rd_kafka_err2name`), e.g. `"_QUEUE_FULL"`.
    package var name: String
    /// Human-readable message (librdkafka's error string or our own).
    package var message: String
    /// The operation may succeed if retried.
    package var isRetriable: Bool
    /// The client instance is unusable (e.g. idempotent producer fenced or lost
    /// sequence); the process must stop or recreate the client.
    package var isFatal: Bool
    /// What we were doing, e.g. `"create topic freshet-dlq"`.
    package var context: String

    package init(code: Int32, name: String? = nil, message: String, isRetriable: Bool = false,
                isFatal: Bool = false, context: String) {
        self.code = code
        self.name = name ?? KafkaError.name(of: code)
        self.message = message
        self.isRetriable = isRetriable
        self.isFatal = isFatal
        self.context = context
    }

    package var description: String {
        var flags = ""
        if isFatal { flags += ", fatal" }
        if isRetriable { flags += ", retriable" }
        return "Kafka error \(name) (\(code)\(flags)) while \(context): \(message)"
    }

    /// Symbolic name of a raw `rd_kafka_resp_err_t` value.
    package static func name(of code: Int32) -> String {
        guard let p = rd_kafka_err2name(rd_kafka_resp_err_t(code)) else { return "ERR_\(code)" }
        return String(cString: p)
    }

    /// Well-known codes the layers above may match on.
    package enum Code {
        package static let noError: Int32 = 0
        package static let timedOut: Int32 = -185  // RD_KAFKA_RESP_ERR__TIMED_OUT
        package static let queueFull: Int32 = -184  // RD_KAFKA_RESP_ERR__QUEUE_FULL
        package static let partitionEOF: Int32 = -191  // RD_KAFKA_RESP_ERR__PARTITION_EOF
        package static let unknownPartition: Int32 = -190  // RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION
        package static let unknownTopic: Int32 = -188  // RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
        package static let fatal: Int32 = -150  // RD_KAFKA_RESP_ERR__FATAL
        package static let invalidArgument: Int32 = -186  // RD_KAFKA_RESP_ERR__INVALID_ARG
        package static let state: Int32 = -172  // RD_KAFKA_RESP_ERR__STATE
        package static let msgTimedOut: Int32 = -192  // RD_KAFKA_RESP_ERR__MSG_TIMED_OUT
        package static let topicAlreadyExists: Int32 = 36
        package static let unknownTopicOrPartition: Int32 = 3
    }

    // MARK: - Construction from librdkafka values (internal)

    /// From a bare response code. Retriability follows librdkafka's
    /// classification of transient errors.
    static func from(_ err: rd_kafka_resp_err_t, message: String? = nil, context: String) -> KafkaError {
        let code = Int32(err.rawValue)
        let msg = message ?? String(cString: rd_kafka_err2str(err))
        return KafkaError(code: code, message: msg, isRetriable: isTransient(code),
                          isFatal: code == Code.fatal, context: context)
    }

    /// From an `rd_kafka_error_t` (consumes and destroys it).
    static func consuming(_ error: OpaquePointer, context: String) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        let code = Int32(rd_kafka_error_code(error).rawValue)
        let msg = rd_kafka_error_string(error).map { String(cString: $0) } ?? ""
        return KafkaError(code: code,
                          name: rd_kafka_error_name(error).map { String(cString: $0) },
                          message: msg,
                          isRetriable: rd_kafka_error_is_retriable(error) != 0 || isTransient(code),
                          isFatal: rd_kafka_error_is_fatal(error) != 0,
                          context: context)
    }

    /// The fatal error of a client instance, if one was raised.
    static func fatalError(of rk: OpaquePointer, context: String) -> KafkaError? {
        var buf = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(rk, &buf, buf.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        let msg = CInterop.errorString(buf)
        return KafkaError(code: Int32(err.rawValue), message: msg, isRetriable: false, isFatal: true,
                          context: context)
    }

    static func isTransient(_ code: Int32) -> Bool {
        switch code {
        case -195, -193, -192, -187, -185, -184, -182, -180, -178, -177, -167, -166, -163, -153:
            // _TRANSPORT, _RESOLVE, _MSG_TIMED_OUT, _ALL_BROKERS_DOWN, _TIMED_OUT, _QUEUE_FULL,
            // _NODE_UPDATE, _WAIT_COORD, _IN_PROGRESS, _PREV_IN_PROGRESS, _OUTDATED,
            // _TIMED_OUT_QUEUE, _INTR, _RETRY
            return true
        case 5, 6, 7, 13, 14, 15, 16, 19, 20, 22, 27, 56, 74, 79, 88:
            // LEADER_NOT_AVAILABLE, NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, NETWORK_EXCEPTION,
            // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR,
            // NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND, ILLEGAL_GENERATION,
            // REBALANCE_IN_PROGRESS, KAFKA_STORAGE_ERROR, FENCED_LEADER_EPOCH,
            // MEMBER_ID_REQUIRED, UNSTABLE_OFFSET_COMMIT
            return true
        default:
            return false
        }
    }
}
