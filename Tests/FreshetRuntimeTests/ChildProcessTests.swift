import Foundation
import FreshetTestSupport
import XCTest

/// The one process helper (`FreshetProcess.ChildProcess`): directory,
/// environment and log; exit codes; stopping with SIGTERM, then SIGKILL.
final class ChildProcessTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "freshet-child-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func testRunsInTheDirectoryWithTheEnvironmentAndAppendsToTheLog() throws {
        let log = "\(directory)/out.log"
        try "before\n".write(toFile: log, atomically: true, encoding: .utf8)
        let child = try ChildProcess("/bin/sh", ["-c", "pwd; echo \"$FRESHET_CHILD_TEST\"; echo err >&2; exit 3"],
                                     logPath: log, directory: directory, environment: ["FRESHET_CHILD_TEST": "given"])
        XCTAssertEqual(try child.wait(timeout: 30), 3)
        let resolved = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), "before\n\(resolved)\ngiven\nerr\n")
    }

    func testTruncateModeStartsAFreshLog() throws {
        let log = "\(directory)/out.log"
        try "stale\n".write(toFile: log, atomically: true, encoding: .utf8)
        let child = try ChildProcess("/bin/echo", ["fresh"], logPath: log, directory: nil, log: .truncate)
        XCTAssertEqual(try child.wait(timeout: 30), 0)
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), "fresh\n")
    }

    func testStopEndsAChildWithSigtermAndEscalatesToSigkill() throws {
        let polite = try ChildProcess("/bin/sleep", ["30"], logPath: "\(directory)/a.log", directory: nil)
        XCTAssertTrue(polite.isRunning)
        XCTAssertEqual(polite.stop(graceSeconds: 10), 128 + SIGTERM)
        XCTAssertFalse(polite.isRunning)
        // Ignores SIGTERM (the disposition survives exec): only SIGKILL ends it.
        let stubborn = try ChildProcess("/bin/sh", ["-c", "trap '' TERM; echo ready; exec sleep 30"],
                                        logPath: "\(directory)/b.log", directory: nil)
        let deadline = Date().addingTimeInterval(30)
        while !stubborn.logTail().contains("ready") && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(stubborn.stop(graceSeconds: 0.5), 128 + SIGKILL)
    }

    func testAChildPastItsTimeIsKilledAndTheErrorCarriesTheLog() throws {
        let child = try ChildProcess("/bin/sh", ["-c", "echo working; exec sleep 30"], logPath: "\(directory)/c.log", directory: nil)
        XCTAssertThrowsError(try child.wait(timeout: 0.5)) { error in
            guard case ChildProcessError.timedOut(_, _, let tail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(tail.contains("working") || tail.isEmpty, tail)
        }
        XCTAssertFalse(child.isRunning)
    }

    func testAMissingExecutableIsASpawnError() {
        XCTAssertThrowsError(try ChildProcess("/nonexistent/freshet-child", [], logPath: "\(directory)/d.log", directory: nil)) { error in
            guard case ChildProcessError.spawnFailed = error else { return XCTFail("\(error)") }
        }
    }
}
