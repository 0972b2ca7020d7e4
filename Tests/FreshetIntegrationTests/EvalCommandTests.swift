import Foundation
import FreshetTestSupport
import XCTest

/// `freshet eval --events` replays only what the processor accepts (issue 9,
/// part 4: one JSON parser). No broker or Redis: eval reads a file.
final class EvalCommandTests: XCTestCase {
    /// A negative `dwell_ms`, an empty user id and an item id written as 42.0
    /// were accepted by eval's former parser and trained on; the processor
    /// dead-letters them. Now eval skips them with the processor's reasons.
    func testEvalSkipsTheLinesTheProcessorDeadLetters() throws {
        let directory = NSTemporaryDirectory() + "freshet-eval-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ts: Int64 = 1_732_600_000_000
        let lines = [
            #"{"user_id":"u1","item_id":"a","action":"click","ts":\#(ts)}"#,
            #"{"user_id":"u2","item_id":"a","action":"click","ts":\#(ts + 1000)}"#,
            #"{"user_id":"u1","item_id":"b","action":"like","dwell_ms":-5,"ts":\#(ts + 2000)}"#,
            #"{"user_id":"","item_id":"b","action":"click","ts":\#(ts + 3000)}"#,
            #"{"user_id":"u2","item_id":42.0,"action":"click","ts":\#(ts + 4000)}"#,
            #"{"user_id":"u1","item_id":"b","action":"watch","ts":\#(ts + 5000)}"#,
        ]
        let file = "\(directory)/events.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let log = "\(directory)/eval.log"
        let eval = try FreshetBinary.start(["eval", "--events", file, "--json", "--model", "bpr", "--dim", "4"], logPath: log)
        XCTAssertEqual(try eval.wait(timeout: 120), 0, eval.logTail())
        let output = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertTrue(output.contains("\"events\": 3,"), output)
        XCTAssertTrue(output.contains("line 3: skipped: invalid_field: field 'dwell_ms' is negative (-5)"), output)
        XCTAssertTrue(output.contains("line 4: skipped: invalid_field"), output)
        XCTAssertTrue(output.contains("line 5: skipped: wrong_type"), output)
        XCTAssertTrue(output.contains("3 line(s) skipped (bad input for the processor)"), output)
    }
}
