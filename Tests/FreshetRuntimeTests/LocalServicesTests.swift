import Foundation
import FreshetRedis
import FreshetTestSupport
import XCTest

/// `LocalServices`, the one way the project starts a local redis-server and
/// broker (the embedded default, benchmarks, every test's servers).
final class LocalServicesTests: XCTestCase {
    /// Services must stop on SIGTERM even when the thread that spawned them
    /// blocks signals (a child inherits the mask), and leave no pid file behind.
    func testServicesSpawnedWithSignalsBlockedStillStopOnSigterm() throws {
        let port = try LocalCluster.freePort()
        let services = LocalServices()
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        sigaddset(&blocked, SIGINT)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        let started = Result { try services.startRedis(port: port, directory: directory) }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        try started.get()

        let pidFile = "\(directory)/redis.pid"
        let pid = try XCTUnwrap(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // glibc's pthread_create blocks every signal in the creating thread for
        // a moment, and redis-server creates its background threads after it
        // listens: a single read can catch that moment (CI did, 2026-12-03:
        // SigBlk fffffffffffbfeff). A PING is answered only from the event loop,
        // after those threads exist; a mask inherited from us never clears, so
        // the reads below still fail on a child that kept our blocked signals.
        XCTAssertEqual(try RedisConnection(url: "redis://127.0.0.1:\(port)").command(["PING"]).string, "PONG")
        var sigBlk = "", mask = UInt64.max
        let stopSignals = (UInt64(1) << UInt64(SIGTERM - 1)) | (UInt64(1) << UInt64(SIGINT - 1))
        for _ in 0..<20 where mask & stopSignals != 0 {
            if !sigBlk.isEmpty { usleep(50_000) }
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            sigBlk = String(try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }))
            mask = try XCTUnwrap(UInt64(sigBlk.split(separator: "\t").last.map(String.init) ?? "", radix: 16))
        }
        XCTAssertEqual(mask & (1 << UInt64(SIGTERM - 1)), 0, "SIGTERM blocked in the child for 1 s: \(sigBlk)")
        XCTAssertEqual(mask & (1 << UInt64(SIGINT - 1)), 0, "SIGINT blocked in the child for 1 s: \(sigBlk)")

        let stopping = Date()
        services.stopAll()
        XCTAssertLessThan(Date().timeIntervalSince(stopping), 4, "stopped by SIGTERM, not by the SIGKILL 5 s later")
        XCTAssertFalse(LoopbackPort.isListening(port))
        XCTAssertFalse(FileManager.default.fileExists(atPath: pidFile), "the pid file goes with its process")
    }

    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "freshet-local-\(UUID().uuidString.prefix(8))"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func pid(in file: String) -> Int32? {
        (try? String(contentsOfFile: file, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Extra arguments reach the server, a taken port fails clearly instead of being
    /// mistaken for ours, a crash (`kill`) and a restart on the same port work, and
    /// `stopAll` stops and forgets everything.
    func testRedisStartsWithArgumentsRestartsAfterKillAndStops() throws {
        let services = LocalServices()
        defer { services.stopAll() }
        let port = try LocalCluster.freePort()
        try services.startRedis(port: port, directory: directory, arguments: ["--maxmemory", "64mb"], ifInUse: .fail)
        let first = try XCTUnwrap(pid(in: "\(directory)/redis.pid"))
        XCTAssertEqual(kill(first, 0), 0, "redis-server runs")
        let redis = try RedisConnection(url: "redis://127.0.0.1:\(port)")
        let maxmemory = try redis.command(["CONFIG", "GET", "maxmemory"])
        guard case .array(let pair) = maxmemory else { return XCTFail("CONFIG GET: \(maxmemory)") }
        XCTAssertEqual(pair.last?.string, "67108864", "the extra argument reached the server")

        // A taken port: a clear error with .fail, the server found there with .reuse.
        let other = LocalServices()
        XCTAssertThrowsError(try other.startRedis(port: port, directory: directory + "/x", ifInUse: .fail)) { error in
            XCTAssertTrue("\(error)".contains("already in use"), "\(error)")
        }
        try other.startRedis(port: port, directory: directory + "/x", ifInUse: .reuse)
        XCTAssertTrue(other.notes.contains { $0.contains("already listening") }, "\(other.notes)")
        other.stopAll()
        XCTAssertTrue(LoopbackPort.isListening(port), "stopping the reuser leaves the server it did not start")

        services.kill(port: port)
        XCTAssertFalse(LoopbackPort.isListening(port), "killed")
        XCTAssertNotEqual(kill(first, 0), 0, "reaped")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(directory)/redis.pid"))

        try services.startRedis(port: port, directory: directory, ifInUse: .fail)
        let second = try XCTUnwrap(pid(in: "\(directory)/redis.pid"))
        XCTAssertNotEqual(second, first)
        XCTAssertEqual(try RedisConnection(url: "redis://127.0.0.1:\(port)").command(["PING"]).string, "PONG")
        let log = try String(contentsOfFile: "\(directory)/redis.log", encoding: .utf8)
        XCTAssertEqual(log.components(separatedBy: "Ready to accept connections").count - 1, 2,
                       "the restart appends to the log:\n\(log)")

        services.stopAll()
        XCTAssertFalse(LoopbackPort.isListening(port))
        XCTAssertNotEqual(kill(second, 0), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(directory)/redis.pid"))
    }

    /// A server that exits at once is reported with its log, without waiting for the start timeout.
    func testServerThatExitsIsReportedWithItsLog() throws {
        let services = LocalServices()
        defer { services.stopAll() }
        let port = try LocalCluster.freePort()
        let started = Date()
        XCTAssertThrowsError(try services.startRedis(port: port, directory: directory, arguments: ["--no-such-option", "1"],
                                                     ifInUse: .fail)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("exited"), text)
            XCTAssertTrue(text.contains("no-such-option"), "the log's tail says why: \(text)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), Double(services.startTimeoutMs) / 1000)
    }

    /// The tests' ports lie below the ephemeral range (no outgoing
    /// connection can take one between the check and the bind), with room
    /// for a cluster bus port when asked, and are never handed out twice.
    func testTestPortsAreBelowTheEphemeralRangeAndNeverRepeat() throws {
        let text = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        let low = try XCTUnwrap(text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) })
        try XCTSkipIf(low < 20_000, "no room below this system's ephemeral range")
        let plain = try (0..<200).map { _ in try LocalCluster.freePort() }
        let bus = try (0..<50).map { _ in try LocalCluster.freePort(plus: 10_000) }
        XCTAssertEqual(Set(plain + bus).count, 250, "never the same port twice")
        XCTAssertTrue(plain.allSatisfy { $0 >= 10_000 && $0 < low }, "\(plain.filter { $0 >= low })")
        XCTAssertTrue(bus.allSatisfy { $0 + 10_000 < low }, "\(bus.filter { $0 + 10_000 >= low })")
    }
}
