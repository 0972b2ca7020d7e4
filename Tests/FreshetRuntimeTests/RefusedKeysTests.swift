import FreshetFeast
import FreshetRedis
@testable import FreshetRuntime
import FreshetTestSupport
import XCTest

/// Keys Redis refuses for good (another writer keeps a string under
/// `user:X` or `item:X`): the entity's features must come back in full once
/// the operator removes the foreign key, without waiting for the entity to
/// change, in the same run and in the next one. Only changed entities were
/// written, so a user or item with no later event stayed missing for good,
/// also after a rerun with nothing to replay.
extension EngineDriverTests {
    /// The foreign keys are removed after every record was read: the next
    /// checkpoints write both entities in full (no event of theirs follows).
    func testARefusedKeyIsWrittenInFullOnceTheForeignKeyIsRemoved() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        let (user, item) = try foreignKeys(driver, oracle)
        let a = try driver.startInstance(stopAtEnd: false)
        driver.assignEverything(to: a)
        try driver.run(until: { consumed(driver) == inputRecords(driver) }, maxRounds: 3_000, "every record read")
        XCTAssertGreaterThan(consumed(driver), 6_000, "the sources and the repartition topics")
        try driver.run(rounds: 60)
        XCTAssertEqual(try driver.redis.command(["GET", "user:\(user)"]).string, "foreign", "the foreign key is left alone")
        XCTAssertEqual(a.processor.rejectedKeyCount, 2, "both keys refused, each counted once")
        XCTAssertEqual(a.processor.stillRefusedKeys, 2, "retried at each checkpoint, refused each time")

        _ = try driver.redis.command(["DEL", "user:\(user)", "item:\(item)"])
        try driver.run(rounds: 60)
        XCTAssertEqual(a.processor.stillRefusedKeys, 0, "written at the next checkpoint")
        try driver.finish(a)
        try assertMatchesOracle(driver, oracle)
    }

    /// A bounded run that ends with refused keys fails and records them in
    /// its checkpoints; after the operator removes the foreign keys, the next
    /// bounded run, with no event to replay, writes them in full and exits cleanly.
    func testTheNextRunWritesTheKeysABoundedRunEndedWithRefused() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        let (user, item) = try foreignKeys(driver, oracle)
        let a = try driver.startInstance()
        driver.assignEverything(to: a)
        XCTAssertThrowsError(try driver.runToCompletion()) { error in
            XCTAssertTrue("\(error)".contains("Redis still refuses 2 key(s) (2 rejected in this run"), "\(error)")
        }
        _ = try driver.redis.command(["DEL", "user:\(user)", "item:\(item)"])

        let consumedBefore = consumed(driver)
        let b = try driver.startInstance()
        driver.assignEverything(to: b)
        try driver.runToCompletion()
        XCTAssertLessThan(consumed(driver) - consumedBefore, inputRecords(driver) / 20,
                          "nothing replayed (the final markers only): the checkpoints are at the end")
        XCTAssertEqual(b.processor.stillRefusedKeys, 0)
        try assertMatchesOracle(driver, oracle)
    }

    /// Writes strings under the keys of a user and an item that have
    /// features (the first of each by id).
    private func foreignKeys(_ driver: EngineDriver, _ oracle: FeatureOracle) throws -> (user: String, item: String) {
        let user = try XCTUnwrap(oracle.users.filter { $0.value.count > 0 }.keys.min())
        let item = try XCTUnwrap(oracle.items.filter { $0.value.popularity > 0 }.keys.min())
        _ = try driver.redis.command(["SET", "user:\(user)", "foreign"])
        _ = try driver.redis.command(["SET", "item:\(item)", "foreign"])
        return (user, item)
    }
}

/// Which entity a refused key names, and the checkpoint field that carries them.
final class RefusedEntityTests: XCTestCase {
    func testARefusedKeyNamesItsUserOrItemInEitherLayout() {
        let keys = RedisKeys(prefix: "app:", group: "g")
        let feast = FeastRows(Topology.Feast())
        func named(_ key: [UInt8]) -> RefusedEntity? { RefusedEntity.named(by: key, keys: keys, feast: feast) }
        XCTAssertEqual(named(Array("app:user:u1".utf8)), .user("u1"))
        XCTAssertEqual(named(Array("app:item:i:9".utf8)), .item("i:9"), "the id is everything after the prefix")
        XCTAssertEqual(named(feast.userKey("u 1")), .user("u 1"))
        let longId = String(repeating: "é", count: 100)
        XCTAssertEqual(named(feast.itemKey(longId)), .item(longId), "a length above 127 (bytes above 0x7f in the key)")
        XCTAssertNil(named(Array("app:trending".utf8)))
        XCTAssertNil(named(Array("app:user:".utf8)), "no id")
        XCTAssertNil(named(Array("user:u1".utf8)), "another prefix")
        XCTAssertNil(named(FeastEntityKey.encode(joinKey: "user_id", value: "u1", project: "other")), "another project")
        XCTAssertNil(named(FeastEntityKey.encode(joinKey: "session_id", value: "s1", project: "recsys")), "another entity")
        XCTAssertNil(named(FeastEntityKey.encode(stringJoinKeys: [("user_id", "u1"), ("item_id", "i1")], project: "recsys")))
    }

    func testTheCheckpointCarriesTheRefusedEntities() throws {
        var checkpoint = TaskCheckpoint()
        checkpoint.nextOffset = 7
        checkpoint.refused = [.user("u1"), .item("i1"), .item("é")]
        let task = TaskId(stage: .items, partition: 0)
        let fields = Dictionary(uniqueKeysWithValues: checkpoint.fields())
        XCTAssertEqual(try TaskCheckpoint.parse(fields, task: task).refused, checkpoint.refused)

        checkpoint.refused = []
        let none = Dictionary(uniqueKeysWithValues: checkpoint.fields())
        XCTAssertEqual(none["refused"], [0], "written when empty too: it replaces an earlier list")
        XCTAssertEqual(try TaskCheckpoint.parse(none, task: task).refused, [])

        var corrupt = fields
        corrupt["refused"] = [1, 7]
        XCTAssertThrowsError(try TaskCheckpoint.parse(corrupt, task: task)) { error in
            XCTAssertTrue("\(error)".contains("refused field is corrupt"), "\(error)")
        }
    }
}

/// A Redis that may evict any key under `maxmemory` could drop features and
/// checkpoint entries without an error: the processor refuses it at start.
extension EngineDriverTests {
    func testARedisThatMayEvictAnyKeyIsRefusedAtStart() throws {
        let driver = makeDriver()
        driver.redis.eviction = RedisEvictionSetting(policy: "allkeys-lru", maxmemoryBytes: 1 << 30)
        XCTAssertThrowsError(try driver.startInstance()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("allkeys-lru") && text.contains("maxmemory-policy noeviction")
                          && text.contains("redis.allow_eviction"), text)
        }

        var allowed = driver.topology
        allowed.redis.allowEviction = true
        XCTAssertNoThrow(try driver.startInstance(topology: allowed), "allowed by the topology")
        driver.redis.eviction = RedisEvictionSetting(policy: "allkeys-lru", maxmemoryBytes: 0)
        XCTAssertNoThrow(try driver.startInstance(), "no limit: nothing is evicted")
        driver.redis.eviction = RedisEvictionSetting(policy: "volatile-lru", maxmemoryBytes: 1 << 30)
        XCTAssertNoThrow(try driver.startInstance(), "only keys with a TTL are evicted: Freshet's have none")
    }
}

/// The same settings set while the processor runs (`CONFIG SET
/// maxmemory-policy allkeys-lru` by an operator): read again every few
/// seconds, they stop the run with the same error; the start check alone
/// let it write on into a Redis that could drop its keys.
extension EngineDriverTests {
    func testEvictionTurnedOnWhileRunningStopsTheRun() throws {
        let driver = makeDriver()
        _ = try produce(driver)
        let a = try driver.startInstance(stopAtEnd: false)
        driver.assignEverything(to: a)
        try driver.run(rounds: 40)
        XCTAssertTrue(a.running)
        XCTAssertGreaterThan(consumed(driver), 0)

        driver.redis.eviction = RedisEvictionSetting(policy: "allkeys-lfu", maxmemoryBytes: 1 << 30)
        let stepsPerCheck = Int(StreamProcessor.evictionCheckIntervalMs / driver.stepMs) + 2
        XCTAssertThrowsError(try driver.run(rounds: stepsPerCheck)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("changed while running") && text.contains("allkeys-lfu")
                          && text.contains("redis.allow_eviction"), text)
        }
        XCTAssertFalse(a.running)
    }

    func testEvictionAllowedByTheTopologyOnlyWarnsWhileRunning() throws {
        let driver = makeDriver()
        let oracle = try produce(driver)
        var allowed = driver.topology
        allowed.redis.allowEviction = true
        let a = try driver.startInstance(stopAtEnd: false, topology: allowed)
        driver.assignEverything(to: a)
        driver.redis.eviction = RedisEvictionSetting(policy: "allkeys-lru", maxmemoryBytes: 1 << 30)
        try driver.run(until: { consumed(driver) == inputRecords(driver) }, maxRounds: 3_000, "every record read")
        try driver.run(rounds: Int(StreamProcessor.evictionCheckIntervalMs / driver.stepMs) + 2)
        XCTAssertTrue(a.running)
        XCTAssertNotNil(a.processor.evictionWarning)
        try driver.finish(a)
        try assertMatchesOracle(driver, oracle)
    }
}
