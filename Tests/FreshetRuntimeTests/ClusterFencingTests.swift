import Foundation
import FreshetFeatures
import FreshetRedis
import FreshetTestSupport
@testable import FreshetRuntime
import XCTest

/// Fenced writes split by slot on a real three-master cluster: every key is
/// written as on one Redis, and a zombie is refused in every slot the new
/// owner has written since it took the task over, its checkpoint at once.
final class ClusterFencingTests: XCTestCase {
    let keys = RedisKeys(prefix: "", group: "g", hashTagged: true)
    /// One cluster for the tests that need one (each uses its own task ids and keys).
    nonisolated(unsafe) static var shared: LocalRedisCluster?

    static func sharedCluster() throws -> LocalRedisCluster {
        if let shared { return shared }
        let cluster = try LocalRedisCluster()
        shared = cluster
        return cluster
    }

    override class func tearDown() {
        shared?.stop()
        shared = nil
        super.tearDown()
    }

    func testSlotTagsCoverEverySlot() {
        for slot in [0, 1, 5460, 5461, 12182, 16383] {
            XCTAssertEqual(ClusterSlot.of(Array(SlotTags.tag(for: slot).utf8)), slot)
        }
        XCTAssertEqual(ClusterSlot.of(Array(keys.slotFence(777).utf8)), 777)
    }

    /// A task's state keys share one slot on a cluster; one Redis keeps the historical names.
    func testTaskKeysAreHashTaggedOnlyOnACluster() {
        let task = TaskId(stage: .items, partition: 3)
        let tagged = [keys.epoch(task), keys.checkpointMeta(task), keys.checkpointState(task),
                      keys.checkpointEmbeddings(task), keys.deadLetterFloor(task)]
        XCTAssertEqual(Set(tagged.map { ClusterSlot.of(Array($0.utf8)) }).count, 1, "\(tagged)")
        XCTAssertEqual(keys.epoch(task), "freshet:{g:items-3}:epoch")
        let other = TaskId(stage: .items, partition: 4)
        XCTAssertNotEqual(ClusterSlot.of(Array(keys.epoch(task).utf8)), ClusterSlot.of(Array(keys.epoch(other).utf8)))
        let single = RedisKeys(prefix: "p:", group: "g")
        XCTAssertEqual([single.epoch(task), single.checkpointMeta(task), single.checkpointState(task),
                        single.checkpointEmbeddings(task), single.deadLetterFloor(task)],
                       ["p:freshet:g:epoch:items-3", "p:freshet:g:ckpt:items-3:meta", "p:freshet:g:ckpt:items-3:state",
                        "p:freshet:g:ckpt:items-3:emb", "p:freshet:g:dlq:items-3"])
    }

    func testPartRepliesCombine() {
        let rejected = FencedWriteReply.RejectedKey(key: "k", message: "WRONGTYPE x")
        XCTAssertEqual(ClusterFencing.combine([.applied(rejected: []), .applied(rejected: [rejected])]), .applied(rejected: [rejected]))
        XCTAssertEqual(ClusterFencing.combine([.applied(rejected: []), .refusedByEpoch(current: 7), .refusedByEpoch(current: 9)]),
                       .refusedByEpoch(current: 9))
        XCTAssertEqual(ClusterFencing.combine([.refusedByEpoch(current: 9), .refusedByEpoch(current: nil)]), .refusedByEpoch(current: nil),
                       "a missing epoch key (store lost) wins: the task is rebuilt")
        XCTAssertEqual(ClusterFencing.combine([.failed("ERR x"), .applied(rejected: [])]), .failed("ERR x"))
    }

    /// Takes the task over as the processor does (`acquireEpochScript` on the task's tagged epoch key).
    static func takeOver(_ client: RedisClusterClient, _ keys: RedisKeys, _ task: TaskId) throws -> Int64 {
        let key = keys.epoch(task)
        let now = String(Int64(Date().timeIntervalSince1970 * 1000))
        let reply = try client.command(key: Array(key.utf8), RedisCommand("EVAL", StreamProcessor.acquireEpochScript, "1", key, now, ""))
        return try XCTUnwrap(reply.array?.first?.int)
    }

    func testSplitWritesApplyEverywhereAndAZombieIsFenced() throws {
        let cluster = try Self.sharedCluster()
        let client = try RedisClusterClient(endpoints: ClusterEndpoints(url: cluster.url))
        client.registerScript(ClusterFencing.redisScript)
        client.registerScript(FencedWrite.redisScript)
        let task = TaskId(stage: .items, partition: 2)
        let zombieEpoch = try Self.takeOver(client, keys, task)
        let ownerEpoch = try Self.takeOver(client, keys, task)
        XCTAssertGreaterThan(ownerEpoch, zombieEpoch)

        func write(epoch: Int64, value: String, items: Range<Int>) -> FencedWrite {
            var write = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: epoch)
            for i in items { write.hashSet("item:i\(i)", [("popularity_7d", value)]) }
            write.sortedSetAdd("trending", score: Double(value) ?? 0, member: "i0")
            write.hashSet(rawKey: [1, 0, 0, 0, 0xff], [([0xd6, 0x0f, 0x93, 0x75], [0x20, 0x05])])
            write.hashSet(keys.checkpointMeta(task), [("next_offset", value)])
            return write
        }
        func replies(_ commands: [ClusterCommand]) throws -> [FencedWriteReply] { try client.execute(commands).map(FencedWriteReply.init) }
        // The new owner writes 200 items (spread over all three masters) and its checkpoint meta.
        let owner = try ClusterFencing.commands(for: write(epoch: ownerEpoch, value: "5", items: 0..<200), keys: keys)
        XCTAssertGreaterThan(Set(owner.map { $0.slot }).count, 150, "one script per slot")
        XCTAssertEqual(try replies(owner).filter { $0 != .applied(rejected: []) }, [])
        // The zombie then writes the same keys plus others the new owner has not touched.
        let zombie = try ClusterFencing.commands(for: write(epoch: zombieEpoch, value: "4", items: 0..<300), keys: keys)
        let zombieReplies = try replies(zombie)
        var refusedSlots: Set<Int> = []
        for (command, reply) in zip(zombie, zombieReplies) {
            if case .refusedByEpoch(let current) = reply {
                refusedSlots.insert(command.slot)
                XCTAssertEqual(current, ownerEpoch)
            }
        }
        XCTAssertEqual(refusedSlots, Set(owner.map { $0.slot }), "refused in exactly the slots the owner wrote since taking over")
        XCTAssertEqual(ClusterFencing.combine(zombieReplies), .refusedByEpoch(current: ownerEpoch), "the zombie's writer learns it was fenced")

        for i in 0..<200 {
            let key = "item:i\(i)"
            XCTAssertEqual(try client.command(key: Array(key.utf8), RedisCommand("HGET", key, "popularity_7d")).string, "5", key)
        }
        XCTAssertEqual(try client.command(key: Array("trending".utf8), RedisCommand("ZSCORE", "trending", "i0")).string, "5")
        let meta = keys.checkpointMeta(task)
        XCTAssertEqual(try client.command(key: Array(meta.utf8), RedisCommand("HGET", meta, "next_offset")).string, "5",
                       "the zombie's checkpoint is refused")
        var feast = RedisCommand("HGET")
        feast.append([1, 0, 0, 0, 0xff] as [UInt8])
        feast.append([0xd6, 0x0f, 0x93, 0x75] as [UInt8])
        XCTAssertEqual(try client.command(key: [1, 0, 0, 0, 0xff], feast).bytes, [0x20, 0x05], "binary Feast keys route and fence too")
        // A zombie's checkpoint is refused at once after a takeover, before the new owner wrote anything.
        let newer = try Self.takeOver(client, keys, task)
        var lateCheckpoint = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: ownerEpoch)
        lateCheckpoint.hashSet(keys.checkpointState(task), [("x", "1")])
        XCTAssertEqual(try replies(try ClusterFencing.commands(for: lateCheckpoint, keys: keys)), [.refusedByEpoch(current: newer)])
        // A lost epoch key (a failover to an empty replica) reads as a lost store, as on one Redis.
        _ = try client.command(key: Array(keys.epoch(task).utf8), RedisCommand("DEL", keys.epoch(task)))
        XCTAssertEqual(try replies(try ClusterFencing.commands(for: lateCheckpoint, keys: keys)), [.refusedByEpoch(current: nil)])
    }

    /// The processor's own writer on a cluster (`RedisWriter` with a
    /// `redis+cluster://` target): a zombie's writer is told it was fenced and
    /// its checkpoint is refused; where it could still write (slots the new
    /// owner had not written yet), the new owner's replay rewrites the keys,
    /// and after that the zombie is refused everywhere.
    func testAZombiesWriterIsFencedOnACluster() throws {
        let cluster = try Self.sharedCluster()
        let client = try RedisClusterClient(endpoints: ClusterEndpoints(url: cluster.url))
        let target = try RedisTarget(url: cluster.url)
        let task = TaskId(stage: .users, partition: 1)
        let users = (0..<120).map { "user:w\($0)" }
        func write(_ epoch: Int64, _ value: String, _ keys: ArraySlice<String>, checkpoint: Bool) -> [FencedWrite] {
            var features = FencedWrite(task: task, epochKey: self.keys.epoch(task), epoch: epoch)
            for key in keys { features.hashSet(key, [("interaction_count", value)]) }
            var state = FencedWrite(task: task, epochKey: self.keys.epoch(task), epoch: epoch)
            state.isCheckpoint = true
            state.hashSet(self.keys.checkpointMeta(task), [("next_offset", value), ("epoch", String(epoch))])
            return checkpoint ? [features, state] : [features]
        }
        func value(_ key: String) throws -> String? {
            try client.command(key: Array(key.utf8), RedisCommand("HGET", key, "interaction_count")).string
        }
        func run(_ writer: RedisWriter, _ writes: [FencedWrite]) -> RedisWriter.Report {
            writer.submit(RedisWriter.Batch(writes: writes))
            writer.waitUntilDrained()
            return writer.takeReport()
        }

        let zombieEpoch = try Self.takeOver(client, keys, task)
        let zombie = try RedisWriter(target: target, keys: keys, observer: FencingTests.NullObserver())
        zombie.start()
        defer { zombie.stop() }
        let first = run(zombie, write(zombieEpoch, "1", users[...], checkpoint: true))
        XCTAssertTrue(first.fencedTasks.isEmpty && first.failures.isEmpty && first.failedCheckpoints.isEmpty, "\(first)")

        // A new owner takes over and writes the first 40 users (its replay has got that far).
        let ownerEpoch = try Self.takeOver(client, keys, task)
        let owner = try RedisWriter(target: target, keys: keys, observer: FencingTests.NullObserver())
        owner.start()
        defer { owner.stop() }
        XCTAssertTrue(run(owner, write(ownerEpoch, "2", users[..<40], checkpoint: true)).fencedTasks.isEmpty)

        let refused = run(zombie, write(zombieEpoch, "3", users[...], checkpoint: true))
        XCTAssertEqual(refused.fencedTasks.map(\.task), [task, task], "both the features and the checkpoint are refused")
        XCTAssertEqual(refused.fencedTasks.first?.current, ownerEpoch)
        XCTAssertEqual(refused.failedCheckpoints, [task])
        XCTAssertEqual(FencedWriteReply.epochRefusal(ours: zombieEpoch, current: refused.fencedTasks.first?.current), .fencedByNewerOwner)
        for key in users[..<40] { XCTAssertEqual(try value(key), "2", "the owner's value stays: \(key)") }
        let meta = keys.checkpointMeta(task)
        XCTAssertEqual(try client.command(key: Array(meta.utf8), RedisCommand("HGET", meta, "epoch")).string, String(ownerEpoch))

        // The owner's replay reaches the other users; from then on the zombie is refused in every slot.
        XCTAssertTrue(run(owner, write(ownerEpoch, "2", users[40...], checkpoint: false)).fencedTasks.isEmpty)
        let everywhere = run(zombie, write(zombieEpoch, "4", users[...], checkpoint: false))
        XCTAssertEqual(everywhere.fencedTasks.map(\.task), [task])
        for key in users { XCTAssertEqual(try value(key), "2", "every key ends with the owner's value: \(key)") }
    }
}

/// Feast's own cluster client (redis-py RedisCluster) reads the rows that the
/// cluster layer wrote: both compute slots from the raw key bytes.
final class ClusterFeastTests: XCTestCase {
    func testFeastReadsRowsWrittenThroughTheClusterLayer() throws {
        let python = try FeastInstall.python()
        let cluster = try LocalRedisCluster()
        defer { cluster.stop() }
        let client = try RedisClusterClient(endpoints: ClusterEndpoints(url: cluster.url))
        client.registerScript(ClusterFencing.redisScript)
        client.registerScript(FencedWrite.redisScript)
        let task = TaskId(stage: .items, partition: 0)
        let keys = RedisKeys(prefix: "", group: "g", hashTagged: true)
        let epoch = try ClusterFencingTests.takeOver(client, keys, task)

        let rows = FeastRows(Topology.Feast())
        var write = FencedWrite(task: task, epochKey: keys.epoch(task), epoch: epoch)
        let users = (0..<40).map { "u\($0)" } + ["ué-漢"]
        for (n, user) in users.enumerated() {
            write.hashSet(rawKey: rows.userKey(user), rows.userFields(UserFeatures(recentItems: ["i\(n)", "i0"], interactionCount: Int64(n),
                                                                                      updatedMs: 1_767_225_600_500 + Int64(n))))
        }
        let replies = try client.execute(try ClusterFencing.commands(for: write, keys: keys))
        XCTAssertTrue(replies.allSatisfy { !$0.isError }, "\(replies.filter(\.isError).prefix(3))")

        let directory = cluster.directory
        let requests = "\(directory)/requests.json"
        try JSONSerialization.data(withJSONObject: ["users": users, "items": [String]()]).write(to: URL(fileURLWithPath: requests))
        let seeds = cluster.ports.prefix(3).map { "127.0.0.1:\($0)" }.joined(separator: ",")
        let out = "\(directory)/read.json"
        let arguments = [python, "\(LocalCluster.packageRoot)/scripts/feast_online_read.py", "--repo", "\(LocalCluster.packageRoot)/feast_repo",
                         "--redis", seeds, "--cluster", "--requests", requests].map { "'\($0)'" }.joined(separator: " ")
        let child = try ChildProcess("/bin/bash", ["-c", "\(arguments) > '\(out)'"], logPath: "\(directory)/read.log")
        XCTAssertEqual(try child.wait(timeout: 300), 0, child.logTail())
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
        let read = try XCTUnwrap(json?["users"] as? [String: [String: Any]])
        for (n, user) in users.enumerated() {
            XCTAssertEqual(read[user]?["recent_items_50"] as? [String], ["i\(n)", "i0"], user)
            XCTAssertEqual((read[user]?["interaction_count"] as? NSNumber)?.int64Value, Int64(n), user)
            XCTAssertEqual((read[user]?["_ts_ms"] as? NSNumber)?.int64Value, 1_767_225_600_500 + Int64(n), user)
        }
    }
}
