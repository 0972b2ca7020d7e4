import Foundation
import FreshetCore
import FreshetFeatures
import FreshetRedis
import Logging

/// Restore time of one task holding many user keys: writes a checkpoint the
/// way the processor does, then times the processor's own restore path.
package enum RestoreBenchmark {
    package struct Report: Sendable, CustomStringConvertible {
        package var users: Int
        package var checkpointBytes: Int
        package var writeSeconds: Double
        package var restoreSeconds: Double
        package var description: String {
            String(format: "restore: %d user keys, checkpoint %.1f MiB, written in %.2f s, restored in %.2f s (%.0f keys/s)",
                   users, Double(checkpointBytes) / 1_048_576, writeSeconds, restoreSeconds, Double(users) / restoreSeconds)
        }
    }

    package static func run(redisURL: String, users: Int, itemsPerUser: Int = 10, seed: UInt64 = 1) throws -> Report {
        let endpoint = try RedisEndpoint(url: redisURL)
        let group = "restore-bench"
        let task = TaskId(stage: .interactions, partition: 0)
        let keys = RedisKeys(prefix: "", group: group)

        // State as a source task would hold it.
        let store = UserFeatureStore()
        var random = SplitMix64(seed: seed)
        let base: Int64 = 1_767_225_600_000
        for user in 0..<users {
            for event in 0..<itemsPerUser {
                store.apply(Interaction(userId: "u\(user)", itemId: "i\(random.nextInt(100_000))", action: .click,
                                        dwellMs: nil, ts: base + Int64(event) * 1000, requestId: nil))
            }
        }

        let connection = try RedisConnection(endpoint: endpoint, commandTimeoutMs: 60_000)
        _ = try connection.command(["DEL", keys.checkpointState(task), keys.checkpointMeta(task)])
        let writeStart = Date()
        var bytes = 0
        var pipeline = RedisPipeline()
        var batch: [(String, [UInt8])] = []
        func sendBatch() throws {
            guard !batch.isEmpty else { return }
            pipeline.add(.hset(keys.checkpointState(task), batch))
            batch.removeAll(keepingCapacity: true)
            if pipeline.count >= 20 {
                for reply in try connection.execute(pipeline) { _ = try reply.checked() }
                pipeline.removeAll(keepingCapacity: true)
            }
        }
        for userId in store.takeChangedForCheckpoint() {
            guard let entry = store.encodeEntry(userId) else { continue }
            bytes += entry.count + userId.utf8.count
            batch.append((userId, entry))
            if batch.count >= 1000 { try sendBatch() }
        }
        try sendBatch()
        if !pipeline.isEmpty { for reply in try connection.execute(pipeline) { _ = try reply.checked() } }
        var meta = TaskCheckpoint()
        meta.nextOffset = 0
        meta.entries = store.count
        _ = try connection.command(.hset(keys.checkpointMeta(task), meta.fields()))
        let writeSeconds = Date().timeIntervalSince(writeStart)

        var topology = Topology()
        topology.admin.port = -1
        let processor = StreamProcessor(topology: topology,
                                        options: ProcessorOptions(brokers: "unused:9092", redis: endpoint, group: group),
                                        logger: Logger(label: "freshet.bench"))
        processor.control = try ReconnectingRedis(endpoint: endpoint, commandTimeoutMs: 60_000)
        let restoreStart = Date()
        _ = try processor.restore(task, topicPartition: .init(topic: "interactions", partition: 0), nowMs: 0)
        let restoreSeconds = Date().timeIntervalSince(restoreStart)
        let restored = processor.sourceTasks.values.first?.users?.count ?? 0
        guard restored == store.count else {
            throw ProcessorError.checkpoint("restored \(restored) users, expected \(store.count)")
        }
        _ = try connection.command(["DEL", keys.checkpointState(task), keys.checkpointMeta(task)])
        return Report(users: users, checkpointBytes: bytes, writeSeconds: writeSeconds, restoreSeconds: restoreSeconds)
    }
}
