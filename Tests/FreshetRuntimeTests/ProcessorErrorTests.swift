import FreshetKafka
import FreshetRedis
@testable import FreshetRuntime
import XCTest

/// Errors that stop the processor keep the Kafka or Redis error they came
/// from, so a caller can still tell fatal from retriable.
final class ProcessorErrorTests: XCTestCase {
    func testRedisAndKafkaFailuresKeepTheirTypedErrors() {
        let refused = RedisError(kind: .server("OOM"), message: "OOM command not allowed", context: "EVALSHA on redis://x")
        let stopped = ProcessorError.redisFailure(refused, context: "writes abandoned")
        guard case .redisFailure(let redis, _) = stopped else { return XCTFail("\(stopped)") }
        XCTAssertEqual(redis, refused)
        XCTAssertTrue(redis.isRetriable, "an OOM refusal stays retriable for whoever handles the error")
        XCTAssertEqual(stopped.description, "redis: writes abandoned: redis refuses writes (OOM): OOM command not allowed")

        let kafka = KafkaError(code: KafkaError.Code.state, message: "producer fenced", context: "produce")
        let enqueue = ProcessorError.kafkaFailure(kafka, context: "cannot enqueue a record")
        guard case .kafkaFailure(let kept, _) = enqueue else { return XCTFail("\(enqueue)") }
        XCTAssertEqual(kept.code, kafka.code)
        XCTAssertEqual(kept.isFatal, kafka.isFatal)
        XCTAssertTrue(enqueue.description.hasPrefix("kafka: cannot enqueue a record: "))
    }
}
