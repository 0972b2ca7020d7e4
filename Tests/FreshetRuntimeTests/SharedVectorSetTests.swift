import Foundation
import FreshetEmbeddings
import FreshetRedis
import FreshetTestSupport
@testable import FreshetRuntime
import XCTest

/// The refresh leader's publication against a real Redis: a reader loads
/// exactly what was published, only newer versions, and a leader that lost
/// `items-0` (a zombie at an older epoch) cannot switch the pointer.
final class SharedVectorSetTests: XCTestCase {
    /// Four cliques of ten items.
    static var snapshot: CooccurrenceSnapshot {
        var builder = CooccurrenceSnapshot.Builder()
        let ids = (0..<40).map { ByteId("i\($0)") }
        for (n, a) in ids.enumerated() {
            builder.addRow(item: a, degree: 5, entries: ids.enumerated().filter { $0.offset != n && $0.offset % 4 == n % 4 }
                .map { ($0.element, UInt32(1 + n % 3)) })
        }
        return builder.snapshot
    }

    static func set(version: Int64) -> ItemVectorSet {
        SpectralRefresh.refresh(SymmetricSparseMatrix(snapshot), dimension: 4, previous: nil,
                                iterations: 4, seed: 3, version: version)
    }

    func testReadersLoadThePublishedSetAndAZombieLeaderIsFenced() throws {
        let cluster = try LocalCluster(withBroker: false)
        defer { cluster.stop() }
        let store = try RedisTarget(url: cluster.redisURL).makeStore(shouldStop: { false })
        defer { store.close() }
        let keys = RedisKeys(prefix: "p:", group: "g")
        var shared = SharedVectorSet(keys: keys)
        shared.retainMs = 5_000
        let redis = try RedisConnection(url: cluster.redisURL)
        let epochKey = keys.epoch(SharedVectorSet.leaderTask)

        XCTAssertNil(try shared.loadIfNewer(than: 0, store: store), "nothing published yet")
        XCTAssertEqual(try redis.command(["INCR", epochKey]).int, 1)
        let first = Self.set(version: 3)
        XCTAssertEqual(try shared.publish(first, epoch: 1, store: store), .published)
        let loaded = try XCTUnwrap(try shared.loadIfNewer(than: 0, store: store))
        XCTAssertEqual(loaded.version, 3)
        XCTAssertEqual(loaded.items, first.items)
        XCTAssertEqual(loaded.vectors, first.vectors)
        XCTAssertNil(try shared.loadIfNewer(than: 3, store: store), "not newer than what the reader has")

        // Another instance takes items-0 (epoch 2) and publishes version 4; the
        // old leader, unaware, tries to publish its version 4 at epoch 1.
        XCTAssertEqual(try redis.command(["INCR", epochKey]).int, 2)
        let second = Self.set(version: 4)
        XCTAssertEqual(try shared.publish(second, epoch: 2, store: store), .published)
        var zombieSet = Self.set(version: 5)
        _ = zombieSet.foldIn(ByteId("zombie"), degree: 1, row: [(ByteId("i0"), 1)])
        XCTAssertEqual(try shared.publish(zombieSet, epoch: 1, store: store), .fenced(current: 2))
        let afterZombie = try XCTUnwrap(try shared.loadIfNewer(than: 0, store: store))
        XCTAssertEqual(afterZombie.version, 4, "the pointer still names the new leader's set")
        XCTAssertEqual(try redis.command(["EXISTS", keys.embeddingSet(SharedVectorSet.leaderTask, data: "1-5")]).int, 0,
                       "the zombie's data hash is removed")
        // The superseded set expires (readers still loading it had retainMs).
        let ttl = try redis.command(["PTTL", keys.embeddingSet(SharedVectorSet.leaderTask, data: "1-3")]).int ?? -1
        XCTAssertGreaterThan(ttl, 0)
        XCTAssertLessThanOrEqual(ttl, 5_000)
        XCTAssertEqual(try redis.command(["PTTL", keys.embeddingSet(SharedVectorSet.leaderTask, data: "2-4")]).int, -1,
                       "the current set does not expire")
    }

    /// A Redis of its own (stopped after the test) with `items-0` of group
    /// `g` at epoch 1: its target, a store and a connection on it, and the group's shared set.
    func groupAtLeaderEpochOne() throws -> (RedisTarget, any RedisStore, RedisConnection, SharedVectorSet) {
        let cluster = try LocalCluster(withBroker: false)
        addTeardownBlock { cluster.stop() }
        let target = try RedisTarget(url: cluster.redisURL)
        let store = try target.makeStore(shouldStop: { false })
        addTeardownBlock { store.close() }
        let keys = RedisKeys(prefix: "", group: "g")
        let redis = try RedisConnection(url: cluster.redisURL)
        XCTAssertEqual(try redis.command(["INCR", keys.epoch(SharedVectorSet.leaderTask)]).int, 1)
        return (target, store, redis, SharedVectorSet(keys: keys))
    }

    /// A follower's refresher (and a restarted instance's, before its first
    /// refresh) adopts the published set as its latest result; a leader
    /// publishes what it computes, continuing the group's version numbers.
    func testRefresherAdoptsThePublishedSetAndALeaderContinuesItsVersions() throws {
        let (target, store, _, shared) = try groupAtLeaderEpochOne()
        let published = Self.set(version: 7)
        XCTAssertEqual(try shared.publish(published, epoch: 1, store: store), .published)

        let refresher = EmbeddingRefresher(config: CooccurrenceConfig(dimension: 4), finalIterations: 4,
                                           redis: target, shared: shared)
        defer { refresher.stop() }
        let deadline = Date().addingTimeInterval(10)
        while refresher.latest.version != 7, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(refresher.latest.version, 7, "the follower adopted the published set")
        XCTAssertEqual(refresher.latest.vectors, published.vectors)
        XCTAssertEqual(refresher.loadedSets, 1)

        // Now it leads: its refresh is version 8, published for the others.
        refresher.setLeader(epoch: 1)
        var builder = CooccurrenceSnapshot.Builder()
        builder.addRow(item: ByteId("a"), degree: 2, entries: [(ByteId("b"), UInt32(1))])
        builder.addRow(item: ByteId("b"), degree: 2, entries: [(ByteId("a"), UInt32(1))])
        refresher.submit(.init(local: builder.snapshot, remoteKeys: [], cutoff: nil, final: false))
        refresher.waitUntilIdle()
        XCTAssertEqual(refresher.latest.version, 8)
        XCTAssertEqual(try shared.loadIfNewer(than: 7, store: store)?.items, refresher.latest.items)
        XCTAssertEqual(refresher.takeFailures(), [])
    }

    /// The end of a bounded run waits for the final vectors, not for the
    /// leader's copy of them for the group: with Redis holding writes back
    /// (`CLIENT PAUSE ... WRITE`), the result is `latest` at once while the
    /// copy waits; once Redis takes writes again the copy lands, and
    /// `waitUntilIdle` (what a new submission after it waits for) returns.
    func testTheLeadersResultIsItsOwnBeforeItsCopyForTheGroupIsWritten() throws {
        let (target, store, redis, shared) = try groupAtLeaderEpochOne()
        let refresher = EmbeddingRefresher(config: CooccurrenceConfig(dimension: 4), finalIterations: 4,
                                           redis: target, shared: shared)
        defer { refresher.stop() }
        refresher.setLeader(epoch: 1)
        // Reads (the refresher's look for a published set) pass a write pause.
        XCTAssertEqual(try redis.command(["CLIENT", "PAUSE", "1500", "WRITE"]).string, "OK")
        let submitted = Date()
        refresher.submit(.init(local: Self.snapshot, remoteKeys: [], cutoff: nil, final: true, version: 1))
        refresher.waitUntilComputed()
        XCTAssertLessThan(Date().timeIntervalSince(submitted), 1.0, "the result did not wait for the paused write")
        XCTAssertEqual(refresher.latest.version, 1)
        XCTAssertTrue(refresher.busy, "the copy for the group is still being written")
        refresher.waitUntilIdle()
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(submitted), 1.0, "the copy waited for Redis to take writes")
        XCTAssertEqual(try shared.loadIfNewer(than: 0, store: store)?.vectors, refresher.latest.vectors)
        XCTAssertEqual(refresher.takeFailures(), [])
    }
}
