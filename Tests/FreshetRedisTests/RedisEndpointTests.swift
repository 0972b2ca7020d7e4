import XCTest
import FreshetRedis

final class RedisEndpointTests: XCTestCase {
    func testDefaults() throws {
        let endpoint = try RedisEndpoint(url: "redis://localhost")
        XCTAssertEqual(endpoint, RedisEndpoint(host: "localhost", port: 6379))
        XCTAssertEqual(endpoint.database, 0)
        XCTAssertFalse(endpoint.tls)
        XCTAssertNil(endpoint.password)
        XCTAssertEqual(endpoint.description, "redis://localhost:6379/0")
    }

    func testFullURLAndRedaction() throws {
        let endpoint = try RedisEndpoint(url: "redis://alice:s3cr%40t@cache.internal:6380/3")
        XCTAssertEqual(endpoint.host, "cache.internal")
        XCTAssertEqual(endpoint.port, 6380)
        XCTAssertEqual(endpoint.username, "alice")
        XCTAssertEqual(endpoint.password, "s3cr@t")
        XCTAssertEqual(endpoint.database, 3)
        XCTAssertEqual(endpoint.description, "redis://alice:***@cache.internal:6380/3")
        XCTAssertFalse(endpoint.description.contains("s3cr"))
        XCTAssertFalse("\(endpoint)".contains("s3cr"))
    }

    func testPasswordOnlyAndTLSAndIPv6AndQueryDB() throws {
        let passwordOnly = try RedisEndpoint(url: "rediss://:hunter2@10.0.0.1")
        XCTAssertNil(passwordOnly.username)
        XCTAssertEqual(passwordOnly.password, "hunter2")
        XCTAssertTrue(passwordOnly.tls)
        XCTAssertEqual(passwordOnly.description, "rediss://:***@10.0.0.1:6379/0")

        let v6 = try RedisEndpoint(url: "redis://[::1]:7000/2")
        XCTAssertEqual(v6.host, "::1")
        XCTAssertEqual(v6.port, 7000)
        XCTAssertEqual(v6.database, 2)
        XCTAssertEqual(v6.description, "redis://[::1]:7000/2")

        XCTAssertEqual(try RedisEndpoint(url: "redis://h:1?db=5").database, 5)
        XCTAssertEqual(try RedisEndpoint(url: "redis://h/").database, 0)
    }

    func testUnixSocket() throws {
        let endpoint = try RedisEndpoint(url: "unix:///run/redis/redis.sock?db=4")
        XCTAssertEqual(endpoint.unixSocketPath, "/run/redis/redis.sock")
        XCTAssertEqual(endpoint.database, 4)
        XCTAssertEqual(endpoint.description, "unix:///run/redis/redis.sock?db=4")
        let withAuth = try RedisEndpoint(url: "unix://u:p@/tmp/r.sock")
        XCTAssertEqual(withAuth.username, "u")
        XCTAssertEqual(withAuth.description, "unix://u:***@/tmp/r.sock")
    }

    func testBadURLs() {
        let cases: [(String, String)] = [
            ("localhost:6379", "missing scheme"),
            ("http://localhost", "unsupported scheme"),
            ("redis://", "missing host"),
            ("redis://host:99999", "port"),
            ("redis://host:abc", "port"),
            ("redis://host/x", "database index"),
            ("redis://host/-1", "database index"),
            ("redis://secret@host", "ambiguous"),
            ("redis://host?timeout=3", "unsupported query parameter"),
            ("redis://[::1", "IPv6"),
            ("unix://relative.sock", "absolute socket path"),
            ("redis://u:%zz@host", "percent-encoding"),
        ]
        for (url, expected) in cases {
            do {
                _ = try RedisEndpoint(url: url)
                XCTFail("\(url) should not parse")
            } catch {
                XCTAssertEqual(error.kind, .invalidArgument, url)
                XCTAssertTrue(error.message.contains(expected), "\(url): \(error.message)")
            }
        }
    }

    /// `--redis` takes a cluster URL too, so a wrong scheme there names it
    /// among the forms accepted (a user who mistyped `redis+cluster://`
    /// was told only of the single-server ones).
    func testATargetsSchemeErrorNamesTheClusterForm() {
        for url in ["localhost:6379", "redis-cluster://a:1,b:2", "http://localhost"] {
            do {
                _ = try RedisTarget(url: url)
                XCTFail("\(url) should not parse")
            } catch {
                XCTAssertEqual(error.kind, .invalidArgument, url)
                XCTAssertTrue(error.message.contains("redis://, rediss://, unix:// or redis+cluster://"), "\(url): \(error.message)")
            }
        }
        do {
            _ = try RedisEndpoint(url: "localhost:6379")
            XCTFail("should not parse")
        } catch {
            XCTAssertFalse(error.message.contains("redis+cluster"), "one server's URL: \(error.message)")
        }
    }

    func testErrorsNeverShowThePassword() {
        do {
            _ = try RedisEndpoint(url: "redis://bob:topsecret@host:notaport")
            XCTFail("should not parse")
        } catch {
            XCTAssertFalse(error.description.contains("topsecret"), error.description)
            XCTAssertTrue(error.description.contains("bob:***@"), error.description)
        }
    }
}

final class RedisCommandTests: XCTestCase {
    func testEncoding() {
        let set = RedisCommand.set("k", "v")
        XCTAssertEqual(String(decoding: set.encoded, as: UTF8.self), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        XCTAssertEqual(set.name, "SET")
        XCTAssertEqual(set.description, "SET k v")

        var numbers = RedisCommand("X")
        numbers.append(0)
        numbers.append(Int64.min)
        numbers.append(1234567890123)
        numbers.append(1.5)
        XCTAssertEqual(numbers.arguments.map { String(decoding: $0, as: UTF8.self) },
                       ["X", "0", "-9223372036854775808", "1234567890123", "1.5"])

        let binary = RedisCommand(arguments: [Array("SET".utf8), [0, 1, 0], []])
        XCTAssertEqual(binary.arguments, [Array("SET".utf8), [0, 1, 0], []])
        XCTAssertEqual(binary.argumentCount, 3)
    }

    func testPipelineRanges() {
        var pipeline = RedisPipeline()
        pipeline.add(.get("a"))
        pipeline.add(.get("bb"))
        XCTAssertEqual(pipeline.count, 2)
        XCTAssertEqual(pipeline.byteCount, RedisCommand.get("a").encoded.count + RedisCommand.get("bb").encoded.count)
        pipeline.removeAll()
        XCTAssertTrue(pipeline.isEmpty)
    }
}
