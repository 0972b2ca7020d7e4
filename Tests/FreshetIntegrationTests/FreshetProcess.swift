import Foundation

/// The `freshet` executable built next to the test bundle, run as a child process.
final class FreshetProcess {
    let process = Process()
    let logPath: String

    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["FRESHET_BIN"] { return path }
        // swift test runs .build/<config>/FreshetPackageTests.xctest; the executable sits beside it.
        let testBundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return testBundle.appendingPathComponent("freshet").path
    }

    init(_ arguments: [String], logPath: String, environment: [String: String] = [:]) throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: LocalCluster.packageRoot)
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let handle = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for exit; kills the process and fails after `timeout` seconds.
    func wait(timeout: TimeInterval) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                usleep(500_000)
                kill(process.processIdentifier, SIGKILL)
                throw TestFailure("freshet did not finish within \(Int(timeout)) s; log tail:\n\(logTail())")
            }
            usleep(20_000)
        }
        return process.terminationStatus
    }

    func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}
