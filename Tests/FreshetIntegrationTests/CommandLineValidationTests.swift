import Foundation
import FreshetTestSupport
import XCTest

/// Bad command-line values are refused before anything starts (exit 64,
/// the value named), where some crashed the process or were accepted
/// silently (a new user's findings): no broker or Redis is involved.
final class CommandLineValidationTests: XCTestCase {
    func testBadValuesAreRefusedWithAClearMessage() throws {
        let directory = NSTemporaryDirectory() + "freshet-cli-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let twoRoles = "\(directory)/two-roles.yaml"
        try "sources: {interactions: ix, impressions: im}\ndead_letter_topic: ix\n".write(toFile: twoRoles, atomically: true, encoding: .utf8)
        let empty = "\(directory)/empty.jsonl"
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        // Each case: the arguments, the exit status and what the message must say.
        let cases: [([String], Int32, String)] = [
            (["run", "--admin-port", "70000"], 64, "--admin-port 70000"),   // crashed (SIGILL) converting the port
            (["run", "--admin-port=-5"], 64, "--admin-port -5"),             // was taken as "admin off"
            (["produce", "--users", "0"], 64, "--users"),                    // crashed on a precondition
            (["produce", "--items", "0"], 64, "--items"),
            (["produce", "--bad-fraction", "2"], 64, "--bad-fraction"),      // was accepted
            (["produce", "--partitions", "0"], 64, "--partitions"),          // made topics without partitions
            (["eval", "--events", empty], 64, "no positive interaction"),    // printed a lift of "infx"
            (["eval", "--events", empty, "--planted"], 64, "cannot be combined"),
            (["eval", "--planted", "--ease-lambda", "0"], 64, "--ease-lambda must be a positive number"),
            // Fed its own dead letters back for ever; refused before connecting.
            (["run", "--topology", twoRoles, "--brokers", "127.0.0.1:1", "--redis", "redis://127.0.0.1:1"], 64, "dead_letter_topic"),
        ]
        for (arguments, status, message) in cases {
            let log = "\(directory)/\(arguments.joined(separator: "_").replacingOccurrences(of: "/", with: "-").prefix(80)).log"
            let run = try FreshetBinary.start(arguments, logPath: log)
            let exit = try run.wait(timeout: 30)
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            XCTAssertEqual(exit, status, "\(arguments): \(output)")
            XCTAssertTrue(output.contains(message), "\(arguments) should say '\(message)': \(output)")
        }
    }
}
