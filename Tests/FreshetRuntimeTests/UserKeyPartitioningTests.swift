import FreshetCore
import FreshetKafka
import XCTest
@testable import FreshetRuntime

/// A breaker's input: interactions keyed by user, one batch placed by
/// murmur2 (`freshet produce`, Java clients) and one by librdkafka's default
/// partitioner (CRC-32), left 1,995 of 4,486 users with features computed
/// from part of their events, silently. Any one partitioner alone (those two,
/// or FNV-1a: Sarama's default) is right;
/// mixing them, or records without a key, is a conflict the engine reports.
final class UserKeyPartitioningTests: XCTestCase {
    func testCRC32IsLibrdkafkasConsistentPartitioner() {
        XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes { CRC32.checksum($0) }, 0xCBF4_3926, "the CRC-32 check value")
        // Partitions librdkafka 2.x's default partitioner gave these keys on a
        // 4-partition topic (confluent-kafka against its mock cluster).
        let placed: [String: Int32] = ["u1": 2, "u2161": 0, "u12345": 0, "123456789": 2, "abc": 2, "user-42": 3, "u7": 3, "u99": 3]
        for (key, partition) in placed {
            XCTAssertEqual(Array(key.utf8).withUnsafeBytes { KafkaProducer.consistentPartition(forKey: $0, partitionCount: 4) },
                           partition, key)
        }
    }

    func testFNV1aIsLibrdkafkasAndSaramasHashPartitioner() {
        // Partitions librdkafka 2.x's `fnv1a` partitioner gave these keys on a 4-partition topic.
        let placed: [String: Int32] = ["warm": 0, "u99": 2, "u1": 3, "u12345": 3, "abc": 3, "user-42": 3, "u2161": 0,
                                       "123456789": 0, "u7": 1, "zz": 1]
        for (key, partition) in placed {
            XCTAssertEqual(Array(key.utf8).withUnsafeBytes { KafkaProducer.fnv1aPartition(forKey: $0, partitionCount: 4) },
                           partition, key)
        }
        XCTAssertEqual(Array("a".utf8).withUnsafeBytes { FNV1a.hash($0) }, 0xE40C_292C, "FNV-1a 32 of \"a\"")
    }

    /// The records of partition `p` of 4 under `partitioner`, from 400 users.
    func keys(in p: Int32, _ partitioner: (UnsafeRawBufferPointer) -> Int32) -> [[UInt8]] {
        (0..<400).map { Array("u\($0)".utf8) }.filter { key in key.withUnsafeBytes { partitioner($0) } == p }
    }

    let murmur2 = { (key: UnsafeRawBufferPointer) in KafkaProducer.partition(forKey: key, partitionCount: 4) }
    let crc32 = { (key: UnsafeRawBufferPointer) in KafkaProducer.consistentPartition(forKey: key, partitionCount: 4) }
    let fnv1a = { (key: UnsafeRawBufferPointer) in KafkaProducer.fnv1aPartition(forKey: key, partitionCount: 4) }

    func observe(_ keys: [[UInt8]?], partition: Int32) -> UserKeyPartitioning {
        var check = UserKeyPartitioning(partition: partition, partitionCount: 4)
        for key in keys {
            if let key { key.withUnsafeBytes { check.observe(key: $0) } } else { check.observe(key: nil) }
        }
        return check
    }

    func testOnePartitionerIsNoConflictMixingThemOrNoKeyIs() {
        for p in Int32(0)..<4 {
            let byMurmur = keys(in: p, murmur2), byCRC = keys(in: p, crc32)
            XCTAssertGreaterThan(byMurmur.count, 50)
            XCTAssertFalse(observe(byMurmur + byMurmur, partition: p).conflict, "murmur2 alone, partition \(p)")
            XCTAssertFalse(observe(byCRC, partition: p).conflict, "CRC-32 alone, partition \(p)")
            XCTAssertFalse(observe(keys(in: p, fnv1a), partition: p).conflict, "FNV-1a alone, partition \(p)")
            let mixed = observe(byMurmur + byCRC, partition: p)
            XCTAssertTrue(mixed.conflict, "both partitioners' records in partition \(p)")
            XCTAssertTrue(mixed.explanation.contains("different partitioners"), mixed.explanation)
            XCTAssertTrue(observe([byMurmur[0], nil], partition: p).conflict, "a record without a key")
        }
    }

    /// The source task reports it as a count (the engine logs it and adds it
    /// to `freshet_user_key_partitioning_conflicts_total`), once per partition.
    func testTheSourceTaskReportsTheConflictOnce() {
        let d = TaskDriver(interactionPartitions: 4, impressionPartitions: 4, repartitionPartitions: 2, nowMs: 1_767_225_600_000)
        func click(_ user: String) -> [UInt8] { Array(#"{"user_id":"\#(user)","item_id":"i1","action":"click","ts":1767225500000}"#.utf8) }
        func conflicts(_ p: Int32) -> Int? {
            d.tasks[TaskId(stage: .interactions, partition: p)]?.gauges.counts.first { $0.0 == .userKeyPartitioningConflicts }?.1
        }
        for key in keys(in: 1, murmur2) { d.send(.interactions, partition: 1, key: key, click(String(decoding: key, as: UTF8.self))) }
        d.runUntilQuiet()
        XCTAssertEqual(conflicts(1), 0, "one partitioner")
        for key in keys(in: 1, crc32).prefix(40) { d.send(.interactions, partition: 1, key: key, click(String(decoding: key, as: UTF8.self))) }
        d.send(.interactions, partition: 2, click("u5"))
        d.runUntilQuiet()
        XCTAssertEqual(conflicts(1), 1, "two partitioners")
        XCTAssertEqual(conflicts(2), 1, "no key")
        XCTAssertEqual(conflicts(3), 0)
        XCTAssertNotNil(d.tasks[TaskId(stage: .interactions, partition: 1)]?.gauges.partitioningConflict)
    }
}
