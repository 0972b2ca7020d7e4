import FreshetRedis
import XCTest

/// Slot hashing, hash tags, the cluster URL, redirections and CLUSTER SLOTS parsing: pure logic.
final class ClusterSlotTests: XCTestCase {
    func slot(_ key: String) -> Int { ClusterSlot.of(Array(key.utf8)) }

    func testCRC16IsXModem() {
        XCTAssertEqual(ClusterSlot.crc16(Array("123456789".utf8)), 0x31c3)
        XCTAssertEqual(ClusterSlot.crc16([UInt8]()), 0)
    }

    func testSlotsMatchRedis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        XCTAssertEqual(slot("foo"), 12182)
        XCTAssertEqual(slot("bar"), 5061)
        XCTAssertEqual(slot("123456789"), 12739)
        XCTAssertEqual(slot(""), 0)
    }

    func testHashTags() {
        XCTAssertEqual(slot("{user1000}.following"), slot("{user1000}.followers"))
        XCTAssertEqual(slot("{user1000}.following"), slot("user1000"))
        XCTAssertEqual(slot("foo{}{bar}"), ClusterSlot.of(Array("foo{}{bar}".utf8)), "an empty tag: the whole key")
        XCTAssertEqual(String(decoding: ClusterSlot.hashedPart(of: Array("foo{}{bar}".utf8)), as: UTF8.self), "foo{}{bar}")
        XCTAssertEqual(String(decoding: ClusterSlot.hashedPart(of: Array("foo{{bar}}zap".utf8)), as: UTF8.self), "{bar")
        XCTAssertEqual(String(decoding: ClusterSlot.hashedPart(of: Array("foo{bar}{zap}".utf8)), as: UTF8.self), "bar")
        XCTAssertEqual(String(decoding: ClusterSlot.hashedPart(of: Array("x{".utf8)), as: UTF8.self), "x{")
        // Binary keys (Feast's hold NUL bytes) hash unchanged.
        XCTAssertEqual(ClusterSlot.of([1, 0, 0, 0, 2]), Int(ClusterSlot.crc16([1, 0, 0, 0, 2]) & 0x3fff))
    }

    func testClusterURL() throws {
        let endpoints = try ClusterEndpoints(url: "redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002")
        XCTAssertEqual(endpoints.seeds.map(\.host), ["10.0.0.1", "10.0.0.2", "::1"])
        XCTAssertEqual(endpoints.seeds.map(\.port), [7000, 6379, 7002])
        XCTAssertEqual(endpoints.seeds.map(\.username), ["app", "app", "app"])
        XCTAssertEqual(endpoints.seeds.map(\.password), ["s@cret", "s@cret", "s@cret"])
        XCTAssertEqual(endpoints.description, "redis+cluster://app:***@10.0.0.1:7000,10.0.0.2:6379,[::1]:7002")
        XCTAssertTrue(ClusterEndpoints.isClusterURL("REDIS+CLUSTER://h:1"))
        XCTAssertFalse(ClusterEndpoints.isClusterURL("redis://h:1"))
        for bad in ["redis+cluster://", "redis+cluster://h:1,", "redis+cluster://h:1/2", "redis+cluster://h:1?db=1",
                    "redis+cluster://h:99999", "redis://h:1"] {
            XCTAssertThrowsError(try ClusterEndpoints(url: bad), bad) { error in
                XCTAssertEqual((error as? RedisError)?.kind, .invalidArgument, "\(error)")
            }
        }
        XCTAssertThrowsError(try ClusterEndpoints(url: "redis+cluster://u:pw@h:1/0")) { error in
            XCTAssertFalse("\(error)".contains("pw"), "the password is redacted: \(error)")
        }
    }

    func testRedirections() {
        XCTAssertEqual(ClusterRedirect(errorMessage: "MOVED 3999 127.0.0.1:6381"),
                       ClusterRedirect(errorMessage: "MOVED 3999 127.0.0.1:6381"))
        let moved = ClusterRedirect(errorMessage: "MOVED 3999 127.0.0.1:6381")
        XCTAssertEqual(moved?.kind, .moved)
        XCTAssertEqual(moved?.slot, 3999)
        XCTAssertEqual(moved?.node, ClusterTopology.Node(host: "127.0.0.1", port: 6381))
        let ask = ClusterRedirect(errorMessage: "ASK 12182 [::1]:7002")
        XCTAssertEqual(ask?.kind, .ask)
        XCTAssertEqual(ask?.node, ClusterTopology.Node(host: "::1", port: 7002))
        XCTAssertNil(ClusterRedirect(errorMessage: "ERR unknown command"))
        XCTAssertNil(ClusterRedirect(errorMessage: "MOVED x 127.0.0.1:1"))
    }

    func testClusterSlotsReplyParsing() throws {
        let reply = RedisReply.array([
            .array([.integer(0), .integer(5460), .array([.bulk(Array("127.0.0.1".utf8)), .integer(7000), .bulk(Array("id1".utf8))]),
                    .array([.bulk(Array("127.0.0.1".utf8)), .integer(7003), .bulk(Array("id4".utf8))])]),
            .array([.integer(5461), .integer(16383), .array([.bulk([]), .integer(7001), .bulk(Array("id2".utf8))])]),
        ])
        let answeredBy = ClusterTopology.Node(host: "10.1.1.1", port: 7001)
        let topology = try ClusterTopology.parse(clusterSlots: reply, answeredBy: answeredBy)
        XCTAssertEqual(topology.owners[0], ClusterTopology.Node(host: "127.0.0.1", port: 7000))
        XCTAssertEqual(topology.owners[5460], ClusterTopology.Node(host: "127.0.0.1", port: 7000))
        XCTAssertEqual(topology.owners[5461], answeredBy, "an empty host is the node that answered")
        XCTAssertEqual(topology.masters.count, 2)
        XCTAssertThrowsError(try ClusterTopology.parse(clusterSlots: .array([.array([.integer(0)])]), answeredBy: answeredBy))
    }

    /// A pipeline gives its commands back (a cluster routes each), and each command its routing key.
    func testPipelineCommandsAndRoutingKeys() {
        var binary = RedisCommand("HSET")
        binary.append([1, 0, 0xff] as [UInt8])
        binary.append("f")
        binary.append([0, 13, 10] as [UInt8])
        let commands = [RedisCommand("GET", "user:ué"), RedisCommand("EVALSHA", "abc", "2", "{t}:a", "{t}:b", "x"),
                        RedisCommand("EVAL", "return 1", "0"), RedisCommand("INFO", "server"), binary, RedisCommand("PING")]
        let pipeline = RedisPipeline(commands)
        XCTAssertEqual(pipeline.commands, commands)
        XCTAssertEqual(pipeline.commands.map(\.routingKey), [Array("user:ué".utf8), Array("{t}:a".utf8), nil, nil, [1, 0, 0xff], nil])
    }
}
