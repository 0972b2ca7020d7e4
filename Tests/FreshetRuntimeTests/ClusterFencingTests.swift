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
    func testSlotTagsCoverEverySlot() {
        for slot in [0, 1, 5460, 5461, 12182, 16383] {
            XCTAssertEqual(ClusterSlot.of(Array(SlotTags.tag(for: slot).utf8)), slot)
        }
        XCTAssertEqual(ClusterSlot.of(Array(ClusterFencing.fenceKey(group: "g", slot: 777).utf8)), 777)
    }

    func testSplitWritesApplyEverywhereAndAZombieIsFenced() throws {
        let cluster = try LocalRedisCluster()
        defer { cluster.stop() }
        let client = try RedisClusterClient(endpoints: ClusterEndpoints(url: cluster.url))
        client.registerScript(ClusterFencing.redisScript)
        let task = TaskId(stage: .items, partition: 2)
        let takeOver = ClusterFencing.takeOverCommand(group: "g", task: task)
        XCTAssertEqual(try client.execute([takeOver]), [.integer(1)], "the old owner took the task at epoch 1")
        XCTAssertEqual(try client.execute([takeOver]), [.integer(2)], "the new owner at epoch 2")

        func write(epoch: Int64, value: String, items: Range<Int>) -> FencedWrite {
            var write = FencedWrite(task: task, epochKey: "unused-in-a-cluster", epoch: epoch)
            for i in items { write.hashSet("item:i\(i)", [("popularity_7d", value)]) }
            write.sortedSetAdd("trending", score: Double(value) ?? 0, member: "i0")
            write.hashSet(rawKey: [1, 0, 0, 0, 0xff], [([0xd6, 0x0f, 0x93, 0x75], [0x20, 0x05])])
            write.hashSet(ClusterFencing.checkpointKey(group: "g", task: task, part: "meta"), [("next_offset", value)])
            return write
        }
        // The new owner writes 200 items (spread over all three masters).
        let owner = try ClusterFencing.commands(for: write(epoch: 2, value: "5", items: 0..<200), group: "g")
        XCTAssertGreaterThan(Set(owner.map(\.slot)).count, 150, "one script per slot")
        XCTAssertTrue(try client.execute(owner).allSatisfy { !$0.isError })
        // The zombie (epoch 1) then writes the same keys plus others the new owner has not touched.
        let zombie = try ClusterFencing.commands(for: write(epoch: 1, value: "4", items: 0..<300), group: "g")
        let replies = try client.execute(zombie)
        let refusedSlots = Set(zip(zombie, replies).filter { $0.1.errorMessage?.hasPrefix("FENCED") == true }.map(\.0.slot))
        XCTAssertEqual(refusedSlots, Set(owner.map(\.slot)), "refused in exactly the slots the owner wrote since taking over")

        for i in 0..<200 {
            let key = "item:i\(i)"
            XCTAssertEqual(try client.command(key: Array(key.utf8), RedisCommand("HGET", key, "popularity_7d")).string, "5", key)
        }
        XCTAssertEqual(try client.command(key: Array("trending".utf8), RedisCommand("ZSCORE", "trending", "i0")).string, "5")
        let meta = ClusterFencing.checkpointKey(group: "g", task: task, part: "meta")
        XCTAssertEqual(try client.command(key: Array(meta.utf8), RedisCommand("HGET", meta, "next_offset")).string, "5",
                       "the zombie's checkpoint is refused")
        var feast = RedisCommand("HGET")
        feast.append([1, 0, 0, 0, 0xff] as [UInt8])
        feast.append([0xd6, 0x0f, 0x93, 0x75] as [UInt8])
        XCTAssertEqual(try client.command(key: [1, 0, 0, 0, 0xff], feast).bytes, [0x20, 0x05], "binary Feast keys route and fence too")
        // A zombie's checkpoint is refused even before the new owner checkpoints: the takeover raised that slot's mark.
        var lateCheckpoint = FencedWrite(task: task, epochKey: "", epoch: 1)
        lateCheckpoint.hashSet(ClusterFencing.checkpointKey(group: "g", task: task, part: "state"), [("x", "1")])
        let checkpointReplies = try client.execute(try ClusterFencing.commands(for: lateCheckpoint, group: "g"))
        XCTAssertEqual(checkpointReplies.first?.errorMessage?.hasPrefix("FENCED"), true, "\(checkpointReplies)")
    }
}

/// Feast's own cluster client (redis-py RedisCluster) reads the rows that the
/// cluster layer wrote: both compute slots from the raw key bytes.
final class ClusterFeastTests: XCTestCase {
    func testFeastReadsRowsWrittenThroughTheClusterLayer() throws {
        let setup = try ChildProcess.runScript("setup-feast.sh", [], timeout: 1_200)
        let python = try XCTUnwrap(setup.split(separator: "\n").last.map(String.init))
        let cluster = try LocalRedisCluster()
        defer { cluster.stop() }
        let client = try RedisClusterClient(endpoints: ClusterEndpoints(url: cluster.url))
        client.registerScript(ClusterFencing.redisScript)
        let task = TaskId(stage: .items, partition: 0)
        let epoch = try XCTUnwrap(try client.execute([ClusterFencing.takeOverCommand(group: "g", task: task)]).first?.int)

        let rows = FeastRows(Topology.Feast())
        var write = FencedWrite(task: task, epochKey: "", epoch: epoch)
        let users = (0..<40).map { "u\($0)" } + ["ué-漢"]
        for (n, user) in users.enumerated() {
            write.hashSet(rawKey: rows.userKey(user), rows.userFields(UserFeatures(recentItems: ["i\(n)", "i0"], interactionCount: Int64(n),
                                                                                      updatedMs: 1_767_225_600_500 + Int64(n))))
        }
        let replies = try client.execute(try ClusterFencing.commands(for: write, group: "g"))
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
