import Foundation
import FreshetRedis
import FreshetTestSupport
import XCTest

/// RedisClusterClient against a real three-master cluster (with replicas) on loopback.
final class RedisClusterTests: XCTestCase {
    var cluster: LocalRedisCluster!

    override func setUpWithError() throws {
        cluster = try LocalRedisCluster()
    }

    override func tearDown() {
        cluster?.stop()
    }

    func node(_ port: Int) throws -> RedisConnection { try RedisConnection(url: "redis://127.0.0.1:\(port)") }

    func set(_ key: String, _ value: String) -> ClusterCommand { ClusterCommand(key: key, command: RedisCommand("SET", key, value)) }
    func get(_ key: String) -> ClusterCommand { ClusterCommand(key: key, command: RedisCommand("GET", key)) }

    func testKeysAreRoutedToTheirMastersInOnePipelinePerNode() throws {
        let client = try RedisClusterClient(endpoints: ClusterEndpoints(url: cluster.url))
        XCTAssertEqual(client.topology.masters.count, 3)
        let keys = (0..<3_000).map { "k\($0)" }
        let replies = try client.execute(keys.map { set($0, "v-\($0)") })
        XCTAssertEqual(replies, Array(repeating: .status("OK"), count: keys.count))
        XCTAssertEqual(client.redirects.moved + client.redirects.ask, 0, "a fresh slot map needs no redirection")
        XCTAssertEqual(try client.execute(keys.map(get)).map(\.string), keys.map { "v-\($0)" }, "replies in the caller's order")
        var total: Int64 = 0
        for master in client.topology.masters {
            let size = try XCTUnwrap(try node(master.port).command(["DBSIZE"]).int)
            XCTAssertGreaterThan(size, 800, "\(master) holds about a third of the keys")
            total += size
        }
        XCTAssertEqual(total, 3_000)
        // A binary key (Feast's hold NUL bytes) lands on the master of its slot.
        let binary: [UInt8] = [1, 0, 0, 0, 2, 0, 0, 0, 0xc3, 0xa9]
        var command = RedisCommand("SET")
        command.append(binary)
        command.append("x")
        XCTAssertEqual(try client.command(key: binary, command), .status("OK"))
        let owner = try XCTUnwrap(client.topology.owners[ClusterSlot.of(binary)])
        var exists = RedisCommand("EXISTS")
        exists.append(binary)
        XCTAssertEqual(try node(owner.port).command(exists).int, 1)
    }

    /// Every master's eviction setting, each under its own address.
    func testEvictionSettingsOfEveryMaster() throws {
        let store = ClusterRedis(endpoints: try ClusterEndpoints(url: cluster.url))
        defer { store.close() }
        let client = try RedisClusterClient(endpoints: ClusterEndpoints(url: cluster.url))
        let one = try XCTUnwrap(client.topology.masters.first)
        let admin = try node(one.port)
        _ = try admin.command(["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"])
        defer { _ = try? admin.command(["CONFIG", "SET", "maxmemory-policy", "noeviction"]) }
        let settings = try store.evictionSettings(onRetry: { _, _ in })
        XCTAssertEqual(settings.count, 3)
        XCTAssertEqual(settings.filter(\.value.evictsKeysWithoutTTL).count, 1, "\(settings)")
        XCTAssertEqual(settings["\(one)"]?.policy, "allkeys-lfu", "\(settings)")
    }

    func testMovedAndAskRedirectionsAreFollowed() throws {
        let client = try RedisClusterClient(endpoints: ClusterEndpoints(url: cluster.url))
        let key = "migrating-key"
        let slot = ClusterSlot.of(Array(key.utf8))
        XCTAssertEqual(try client.execute([set(key, "before")]), [.status("OK")])
        let source = try XCTUnwrap(client.topology.owners[slot])
        let target = try XCTUnwrap(client.topology.masters.first { $0 != source })
        let sourceConnection = try node(source.port)
        let targetConnection = try node(target.port)
        let sourceId = try XCTUnwrap(sourceConnection.command(["CLUSTER", "MYID"]).string)
        let targetId = try XCTUnwrap(targetConnection.command(["CLUSTER", "MYID"]).string)

        // Migration in progress: a key of the slot that is not on the source any more gets ASK.
        _ = try targetConnection.command(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceId])
        _ = try sourceConnection.command(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetId])
        _ = try sourceConnection.command(["MIGRATE", "127.0.0.1", String(target.port), key, "0", "5000"])
        XCTAssertEqual(try client.execute([get(key)]), [.bulk(Array("before".utf8))], "read through ASK")
        XCTAssertEqual(try client.execute([set(key, "during")]), [.status("OK")])
        XCTAssertGreaterThanOrEqual(client.redirects.ask, 2)
        XCTAssertEqual(client.topology.owners[slot], source, "ASK does not change the slot map")

        // Migration finished: the stale map gets MOVED, follows it and learns the new owner.
        for master in client.topology.masters {
            _ = try node(master.port).command(["CLUSTER", "SETSLOT", String(slot), "NODE", targetId])
        }
        XCTAssertEqual(try client.execute([get(key), set(key, "after"), get(key)]),
                       [.bulk(Array("during".utf8)), .status("OK"), .bulk(Array("after".utf8))], "order kept across the redirection")
        XCTAssertGreaterThanOrEqual(client.redirects.moved, 1)
        XCTAssertEqual(client.topology.owners[slot], target)
    }

    func testScriptsAreLoadedOnEachNodeOnDemand() throws {
        let client = try RedisClusterClient(endpoints: ClusterEndpoints(url: cluster.url))
        let script = RedisScript(source: "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
        client.registerScript(script)
        let keys = (0..<30).map { "script-\($0)" }
        let replies = try client.execute(keys.map { ClusterCommand(key: $0, command: .evalsha(script, keys: [$0], args: ["v"])) })
        XCTAssertEqual(replies, Array(repeating: .bulk(Array("v".utf8)), count: keys.count), "NOSCRIPT answered by loading it")
    }

    /// What the operator gets when a master dies: commands for its slots are
    /// retried (back-off, topology refresh) until its replica is promoted,
    /// then they succeed on the new master; nothing written before is lost
    /// (the replica had it) and other slots are unaffected.
    func testAKilledMastersSlotsAreServedByItsPromotedReplica() throws {
        let client = try RedisClusterClient(endpoints: ClusterEndpoints(url: cluster.url), failoverTimeoutMs: 60_000)
        let keys = (0..<600).map { "f\($0)" }
        _ = try client.execute(keys.map { set($0, "1") })
        let victim = try XCTUnwrap(client.topology.owners[ClusterSlot.of(Array(keys[0].utf8))])
        // Replicas acknowledge the writes before the master dies (WAIT), as a persistent setup would.
        _ = try node(victim.port).command(["WAIT", "1", "5000"])
        try cluster.kill(port: victim.port)
        let started = Date()
        let replies = try client.execute(keys.map { set($0, "2") })
        let waited = Date().timeIntervalSince(started)
        XCTAssertEqual(replies, Array(repeating: .status("OK"), count: keys.count))
        let promoted = try XCTUnwrap(client.topology.owners[ClusterSlot.of(Array(keys[0].utf8))])
        XCTAssertNotEqual(promoted, victim, "the replica took over the slots")
        XCTAssertEqual(try client.execute(keys.map(get)).map(\.string), Array(repeating: "2", count: keys.count))
        XCTAssertGreaterThan(client.topologyRefreshes, 1)
        print("failover: writes to the dead master's slots waited \(String(format: "%.1f", waited)) s")
    }
}
