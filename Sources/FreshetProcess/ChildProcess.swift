import Foundation

/// A child process of Freshet or of a test: started with `posix_spawn`, its
/// stdout and stderr written to a log file, stdin from /dev/null, stopped
/// with SIGTERM and, after a grace period, SIGKILL. The one process helper of
/// the project: the embedded default's local broker and Redis
/// (`LocalServices`), benchmarks, and the tests' servers and `freshet` runs.
///
/// Signals: the spawning thread may block some (swift-service-lifecycle and
/// `freshet run`'s signal handling do) and a child inherits the mask; a child
/// that blocks SIGTERM only stops by SIGKILL. So every child starts with no
/// signal blocked and default dispositions for the stop signals.
///
/// `waitpid`, not Foundation's `Process`: its `waitUntilExit` can hang on
/// Linux. Not thread-safe: use an instance from one thread at a time.
package final class ChildProcess {
    package let pid: pid_t
    package let logPath: String
    private var exitStatus: Int32?

    /// How the log file is opened.
    package enum LogMode: Sendable { case append, truncate }

    /// Starts `executable` (a path; use `/usr/bin/env` to search `PATH`) with
    /// `arguments`. `directory`: the child's working directory (nil: ours).
    /// `environment`: variables added to ours. `ownProcessGroup`: the child
    /// leads a process group of its own, so a terminal's Ctrl-C (sent to the
    /// foreground group) does not reach it and `signalGroup` reaches its
    /// children too. Throws `ChildProcessError.spawnFailed`.
    package init(_ executable: String, _ arguments: [String], logPath: String, directory: String?,
                environment: [String: String] = [:], log: LogMode = .append, ownProcessGroup: Bool = false) throws {
        self.logPath = logPath
        // `env -C` changes directory in the child: posix_spawn has no portable chdir action.
        let argvStrings = directory.map { ["/usr/bin/env", "-C", $0, executable] + arguments } ?? [executable] + arguments
        let path = argvStrings[0]
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let argv: [UnsafeMutablePointer<CChar>?] = argvStrings.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let mode = log == .append ? O_APPEND : O_TRUNC
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | mode, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if ownProcessGroup {
            flags |= POSIX_SPAWN_SETPGROUP
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw ChildProcessError.spawnFailed(executable: executable, errno: rc) }
        pid = child
    }

    /// Sends `number` to the child.
    package func signal(_ number: Int32) { kill(pid, number) }

    /// Sends `number` to the child's process group (`ownProcessGroup` children).
    package func signalGroup(_ number: Int32) { kill(-pid, number) }

    /// The exit status if the child has exited (non-blocking): its exit code,
    /// or 128 + the signal that ended it.
    package func poll() -> Int32? {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        exitStatus = code
        return code
    }

    package var isRunning: Bool { poll() == nil }

    /// Waits for the child to exit; after `timeout` seconds kills it (SIGKILL)
    /// and throws `ChildProcessError.timedOut` with the log's tail.
    @discardableResult
    package func wait(timeout: TimeInterval) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let code = poll() { return code }
            if Date() > deadline {
                kill(pid, SIGKILL)
                _ = try? wait(timeout: 5)
                throw ChildProcessError.timedOut(logPath: logPath, seconds: Int(timeout), logTail: logTail())
            }
            usleep(20_000)
        }
    }

    /// SIGTERM, then SIGKILL if the child has not exited after `graceSeconds`;
    /// returns once it is gone (reaped).
    @discardableResult
    package func stop(graceSeconds: TimeInterval = 5) -> Int32 {
        if let code = poll() { return code }
        signal(SIGTERM)
        if let code = try? wait(timeout: graceSeconds) { return code }
        return poll() ?? 128 + SIGKILL
    }

    /// The last `lines` lines of the log.
    package func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

/// Why a child could not be started or did not finish.
package enum ChildProcessError: Error, CustomStringConvertible {
    /// `posix_spawn` failed with `errno`.
    case spawnFailed(executable: String, errno: Int32)
    /// The child ran past its time and was killed.
    case timedOut(logPath: String, seconds: Int, logTail: String)

    package var description: String {
        switch self {
        case .spawnFailed(let executable, let errno):
            "cannot start \(executable): \(String(cString: strerror(errno)))"
        case .timedOut(let logPath, let seconds, let logTail):
            "\(logPath): did not finish within \(seconds) s; log tail:\n\(logTail)"
        }
    }
}
