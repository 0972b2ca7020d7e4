import Foundation
import FreshetTestSupport
import XCTest

/// `ProcessCPUTime`: the benchmarks' broker and Redis CPU figures.
final class ProcessCPUTimeTests: XCTestCase {
    func testParsesUserAndSystemTicksAfterACommandNameWithSpacesAndParentheses() {
        // Fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        let line = "4242 (tansu (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 123 456 789"
        XCTAssertEqual(ProcessCPUTime.parse(stat: line, ticksPerSecond: 100), 3.0)
    }

    func testRejectsATruncatedLine() {
        XCTAssertNil(ProcessCPUTime.parse(stat: "4242 (sh) S 1 2 3", ticksPerSecond: 100))
        XCTAssertNil(ProcessCPUTime.parse(stat: "no parenthesis at all", ticksPerSecond: 100))
    }

    func testABusyChildAccumulatesCPUTime() throws {
        let child = try ChildProcess("/bin/sh", ["-c", "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; sleep 30"],
                                     logPath: NSTemporaryDirectory() + "freshet-cpu-\(UUID().uuidString.prefix(8)).log", directory: nil)
        defer { child.stop(graceSeconds: 1) }
        let deadline = Date().addingTimeInterval(30)
        var seconds = 0.0
        while Date() < deadline {
            seconds = try XCTUnwrap(ProcessCPUTime.seconds(pid: child.pid))
            if seconds >= 0.2 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertGreaterThanOrEqual(seconds, 0.2, "a shell counting to 400,000 uses CPU time")
    }
}
