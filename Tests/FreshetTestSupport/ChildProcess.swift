import Foundation

/// A child process started with posix_spawn, its output sent to a log file.
/// (Foundation's `Process.waitUntilExit` can hang on Linux; waitpid does not.)
public final class ChildProcess {
    public let pid: pid_t
    public let logPath: String
    private var exitStatus: Int32?

    /// Runs `executable` with `arguments` in `directory`, stdout and stderr to `logPath`.
    public init(_ executable: String, _ arguments: [String], logPath: String, directory: String = LocalCluster.packageRoot,
                environment: [String: String] = [:]) throws {
        self.logPath = logPath
        let quoted = ([executable] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            .joined(separator: " ")
        // exec so that signals reach the program itself, not a shell.
        let command = "cd '\(directory)' && exec \(quoted) >>'\(logPath)' 2>&1 </dev/null"
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let envStrings = env.map { "\($0.key)=\($0.value)" }
        let shellArguments: [String] = ["/bin/bash", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = shellArguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = envStrings.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, "/bin/bash", nil, nil, argv, envp)
        guard rc == 0 else { throw TestFailure("posix_spawn \(executable) failed: \(rc)") }
        pid = child
    }

    public func signal(_ number: Int32) { kill(pid, number) }

    /// The exit status if the process has exited (non-blocking).
    public func poll() -> Int32? {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return nil }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        exitStatus = code
        return code
    }

    public var isRunning: Bool { poll() == nil }

    /// Waits for exit; kills the process and throws after `timeout` seconds.
    public func wait(timeout: TimeInterval) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let code = poll() { return code }
            if Date() > deadline {
                kill(pid, SIGKILL)
                _ = try? wait(timeout: 5)
                throw TestFailure("\(logPath): did not finish within \(Int(timeout)) s; log tail:\n\(logTail())")
            }
            usleep(20_000)
        }
    }

    public func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Runs a script to completion and returns (exit code, output).
    @discardableResult
    public static func runScript(_ name: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> String {
        let log = NSTemporaryDirectory() + "freshet-script-\(UUID().uuidString.prefix(8)).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let child = try ChildProcess("/bin/bash", ["\(LocalCluster.packageRoot)/scripts/\(name)"] + arguments, logPath: log)
        let code = try child.wait(timeout: timeout)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard code == 0 else { throw TestFailure("scripts/\(name) \(arguments.joined(separator: " ")) exited \(code): \(output)") }
        return output
    }
}

/// The `freshet` executable built next to the test bundle.
public enum FreshetBinary {
    public static var path: String {
        if let path = ProcessInfo.processInfo.environment["FRESHET_BIN"] { return path }
        // swift test runs .build/<config>/FreshetPackageTests.xctest; the executable sits beside it.
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("freshet").path
    }

    public static func start(_ arguments: [String], logPath: String) throws -> ChildProcess {
        try ChildProcess(path, arguments, logPath: logPath)
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
