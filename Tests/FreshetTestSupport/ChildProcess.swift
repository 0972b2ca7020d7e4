import Foundation
@_exported import FreshetProcess

/// The one process helper (`FreshetProcess.ChildProcess`, re-exported here)
/// with the tests' defaults: the child runs in the package root, its output
/// appended to `logPath`.
extension ChildProcess {
    package convenience init(_ executable: String, _ arguments: [String], logPath: String,
                            environment: [String: String] = [:]) throws {
        try self.init(executable, arguments, logPath: logPath, directory: LocalCluster.packageRoot, environment: environment)
    }

    /// Runs `executable` (searched on `PATH` through `/usr/bin/env`) to
    /// completion and returns its output; throws `TestFailure` with the
    /// output when it exits non-zero, `ChildProcessError.timedOut` after `timeout` s.
    @discardableResult
    package static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> String {
        let log = NSTemporaryDirectory() + "freshet-run-\(UUID().uuidString.prefix(8)).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let child = try ChildProcess("/usr/bin/env", [executable] + arguments, logPath: log)
        let code = try child.wait(timeout: timeout)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard code == 0 else { throw TestFailure("\(executable) \(arguments.joined(separator: " ")) exited \(code): \(output)") }
        return output
    }
}

/// The `freshet` executable built next to the test bundle.
package enum FreshetBinary {
    package static var path: String {
        if let path = ProcessInfo.processInfo.environment["FRESHET_BIN"] { return path }
        // swift test runs .build/<config>/FreshetPackageTests.xctest; the executable sits beside it.
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("freshet").path
    }

    package static func start(_ arguments: [String], logPath: String) throws -> ChildProcess {
        try ChildProcess(path, arguments, logPath: logPath)
    }
}

package struct TestFailure: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
