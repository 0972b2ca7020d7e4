import Foundation
import XCTest

/// scripts/start-redis.sh and scripts/stop-services.sh (start-broker.sh is
/// exercised by every broker test).
final class ScriptTests: XCTestCase {
    func testStartAndStopRedisByPidFile() throws {
        let server = BrokerFixture.repoRoot.appendingPathComponent(".freshet/bin/redis-server").path
        guard FileManager.default.isExecutableFile(atPath: server) else {
            throw XCTSkip("redis-server not found at \(server): run `bash scripts/setup.sh`")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("freshet-redis-\(UUID().uuidString)")
        defer {
            _ = try? BrokerFixture.run(["scripts/stop-services.sh", dir.path])
            try? FileManager.default.removeItem(at: dir)
        }
        let port = try BrokerFixture.freePort()
        let (status, out) = try BrokerFixture.run(["scripts/start-redis.sh", String(port), dir.path, "--maxmemory", "64mb"])
        XCTAssertEqual(status, 0, out)
        let pidText = try String(contentsOf: dir.appendingPathComponent("redis.pid"), encoding: .utf8)
        let pid = try XCTUnwrap(Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(kill(pid, 0), 0, "redis-server runs")

        // A second start on the same port fails clearly instead of hijacking it.
        let (again, msg) = try BrokerFixture.run(["scripts/start-redis.sh", String(port), dir.appendingPathComponent("x").path])
        XCTAssertNotEqual(again, 0)
        XCTAssertTrue(msg.contains("already in use"), msg)

        let (stopped, stopOut) = try BrokerFixture.run(["scripts/stop-services.sh", dir.path])
        XCTAssertEqual(stopped, 0, stopOut)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("redis.pid").path))
        var alive = true
        for _ in 0..<50 where alive {
            // Reap-free check: the process is not our child, so kill(0) turns false once it exits.
            alive = kill(pid, 0) == 0
            if alive { usleep(100_000) }
        }
        XCTAssertFalse(alive, "redis-server stopped")
    }
}
