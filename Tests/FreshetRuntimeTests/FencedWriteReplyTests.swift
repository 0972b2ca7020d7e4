import FreshetKafka
import FreshetRedis
@testable import FreshetRuntime
import XCTest

/// Reading the fenced script's replies: rejected keys, epoch refusals, and
/// telling a newer owner from a lost checkpoint store.
final class FencedWriteReplyTests: XCTestCase {
    func testAppliedWithRejectedKeys() {
        let reply = RedisReply.array([.integer(4), .bulk(Array("item:legacy".utf8)),
                                      .bulk(Array("WRONGTYPE Operation against a key holding the wrong kind of value".utf8))])
        guard case .applied(let rejected) = FencedWriteReply(reply) else { return XCTFail("\(FencedWriteReply(reply))") }
        XCTAssertEqual(rejected.map(\.key), ["item:legacy"])
        XCTAssertEqual(rejected.map(\.reason), ["WRONGTYPE"])
        XCTAssertEqual(FencedWriteReply(.array([.integer(3)])), .applied(rejected: []))
    }

    func testEpochRefusalCarriesTheCurrentEpoch() {
        XCTAssertEqual(FencedWriteReply(.error("FENCED epoch 5 is stale, current is 7")), .refusedByEpoch(current: 7))
        XCTAssertEqual(FencedWriteReply(.error("FENCED epoch 5 is stale, current is missing")), .refusedByEpoch(current: nil))
        XCTAssertEqual(FencedWriteReply(.error("ERR something else")), .failed("ERR something else"))
    }

    func testANewerEpochIsFencingAMissingOrOlderOneIsALostStore() {
        XCTAssertEqual(FencedWriteReply.epochRefusal(ours: 5, current: 7), .fencedByNewerOwner)
        XCTAssertEqual(FencedWriteReply.epochRefusal(ours: 5, current: nil), .storeLost)
        XCTAssertEqual(FencedWriteReply.epochRefusal(ours: 5, current: 3), .storeLost)
    }

    func testOutOfMemoryIsATransientRefusal() {
        let error = RedisError.server("OOM command not allowed when used memory > 'maxmemory'.", context: "test")
        XCTAssertTrue(error.isRetriable)
        XCTAssertFalse(error.requiresReconnect)
        XCTAssertEqual(RedisWriter.describe(error), "redis refuses writes (OOM)")
        XCTAssertFalse(RedisError.server("WRONGTYPE Operation against a key", context: "test").isRetriable)
    }

    /// A lost store is rebuilt only from a partition that still starts at
    /// offset 0; after retention deleted records Freshet refuses to run.
    func testReplayStartsAtZeroOrRefusesWhenRetentionDeletedRecords() throws {
        let task = TaskId(stage: .interactions, partition: 2)
        let tp = TopicPartition(topic: "interactions", partition: 2)
        XCTAssertEqual(try StreamProcessor.replayStart(task: task, partition: tp, earliest: 0), 0)
        XCTAssertThrowsError(try StreamProcessor.replayStart(task: task, partition: tp, earliest: 120)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("earliest retained offset is 120") && text.contains("refusing to run"), text)
        }
    }
}
