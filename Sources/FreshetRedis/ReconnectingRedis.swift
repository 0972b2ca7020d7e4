#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `RedisConnection` that survives server restarts and network failures:
/// on a retriable failure it reconnects with exponential back-off and sends
/// the **whole** pipeline again.
///
/// Contract (why resending is safe): callers send only idempotent writes —
/// absolute values (`HSET field value`, `ZADD score member`, `DEL`, `SET`),
/// never relative ones (`HINCRBY`, `LPUSH`) — and scripts that are idempotent
/// in the same sense. A failed attempt may have applied any prefix of the
/// pipeline; applying the whole pipeline again converges to the same state.
///
/// Retries: failures with `isRetriable` (connection, I/O, timeout, and the
/// transient server states `LOADING`, `BUSY`, `TRYAGAIN`, `MASTERDOWN`,
/// `READONLY`, `CLUSTERDOWN`, `OOM`, `MISCONF`, `NOREPLICAS`, whether thrown or found among the pipeline's
/// replies) are retried forever, with a delay starting at `backoff.initialMs`
/// and doubling up to `backoff.maximumMs`, until `shouldStop()` returns true;
/// then the last error is thrown. Other failures (authentication, protocol,
/// unsupported TLS) throw at once. A `NOSCRIPT` reply among the pipeline's
/// replies (someone ran SCRIPT FLUSH) reloads the registered scripts and
/// resends the pipeline.
///
/// Threading: owned by one thread, like `RedisConnection`; every method
/// blocks (including the back-off sleeps, which check `shouldStop` every
/// 50 ms). The `shouldStop` closure is called on that thread.
package final class ReconnectingRedis {
    /// Exponential back-off between reconnect attempts.
    package struct Backoff: Sendable, Equatable {
        /// First delay, in milliseconds. Default 50.
        package var initialMs: Int
        /// Largest delay, in milliseconds. Default 2000.
        package var maximumMs: Int
        /// Growth factor per failed attempt. Default 2.
        package var multiplier: Double

        package init(initialMs: Int = 50, maximumMs: Int = 2000, multiplier: Double = 2) {
            self.initialMs = initialMs
            self.maximumMs = maximumMs
            self.multiplier = multiplier
        }

        /// The delay before retry number `attempt` (1-based).
        package func delayMs(attempt: Int) -> Int {
            var delay = Double(max(0, initialMs))
            for _ in 1..<max(1, attempt) {
                delay *= multiplier
                if delay >= Double(maximumMs) { break }
            }
            return min(maximumMs, Int(delay))
        }
    }

    package let endpoint: RedisEndpoint
    package let connectTimeoutMs: Int
    package let commandTimeoutMs: Int
    package var backoff: Backoff
    /// Asked before every back-off sleep (and during it); returning true ends retrying.
    package var shouldStop: () -> Bool

    private var connection: RedisConnection?
    private var scripts: [RedisScript] = []

    /// True when the last operation succeeded (false before the first one and after any failure).
    package private(set) var isHealthy = false
    /// The error of the last failed attempt (kept after recovery, for logs and health pages).
    package private(set) var lastError: RedisError?
    /// Number of successful reconnects after the first connect.
    package private(set) var reconnectCount = 0
    private var everConnected = false

    /// Does not connect: the first operation does (so the process can start
    /// while Redis is down). Throws only for endpoints this build can never
    /// reach (`rediss://`: `.unsupported`).
    package init(endpoint: RedisEndpoint, connectTimeoutMs: Int = 2000, commandTimeoutMs: Int = 5000,
                backoff: Backoff = Backoff(), shouldStop: @escaping () -> Bool = { false }) throws(RedisError) {
        if endpoint.tls && !RedisEndpoint.isTLSSupported {
            throw RedisError(kind: .unsupported,
                             message: "TLS (rediss://) is not supported: Debian bookworm's hiredis 0.14.1 is built without SSL",
                             context: "ReconnectingRedis(\(endpoint))")
        }
        self.endpoint = endpoint
        self.connectTimeoutMs = connectTimeoutMs
        self.commandTimeoutMs = commandTimeoutMs
        self.backoff = backoff
        self.shouldStop = shouldStop
    }

    /// Whether a connection is currently open (see `RedisConnection.isConnected`).
    package var isConnected: Bool { connection?.isConnected ?? false }

    /// Adds a script to load (`SCRIPT LOAD`) after every connect and reconnect,
    /// so pipelines can use `.evalsha(script, ...)`. When connected, loads it
    /// now (blocking); a failure to do so is left to the next operation.
    package func registerScript(_ script: RedisScript) {
        guard !scripts.contains(script) else { return }
        scripts.append(script)
        if let connection, connection.isConnected {
            do throws(RedisError) {
                try connection.loadScript(script)
            } catch {
                if error.requiresReconnect { drop() }
            }
        }
    }

    /// Sends the whole pipeline and returns its replies, retrying as described
    /// on the type until it succeeds or `shouldStop()` returns true.
    /// `onRetry(error, attempt)` is called before each back-off sleep
    /// (attempt counts from 1). Blocking.
    package func execute(_ pipeline: RedisPipeline,
                        onRetry: (RedisError, Int) -> Void = { _, _ in }) throws(RedisError) -> [RedisReply] {
        try withConnection(onRetry: onRetry) { connection throws(RedisError) in
            try self.attempt(pipeline, on: connection)
        }
    }

    /// One attempt (see `RedisStore.executeOnce`): no back-off, no `shouldStop`.
    package func executeOnce(_ pipeline: RedisPipeline) throws(RedisError) -> [RedisReply] {
        do throws(RedisError) {
            let replies = try attempt(pipeline, on: try connected())
            isHealthy = true
            return replies
        } catch {
            isHealthy = false
            lastError = error
            if error.requiresReconnect { drop() }
            throw error
        }
    }

    /// Sends the pipeline once; transient server states and flushed scripts
    /// (reloaded here) in its replies are thrown, so the caller may resend it
    /// whole (also the check of `executeWatched`).
    func attempt(_ pipeline: RedisPipeline, on connection: RedisConnection) throws(RedisError) -> [RedisReply] {
        let replies = try connection.execute(pipeline)
        for reply in replies {
            guard let message = reply.errorMessage else { continue }
            let prefix = RedisError.serverErrorPrefix(message)
            if prefix == "NOSCRIPT" && !scripts.isEmpty {
                for script in scripts { try connection.loadScript(script) }
                throw RedisError(kind: .server(prefix), message: message,
                                 context: "execute(pipeline of \(pipeline.count) commands) on \(endpoint): scripts reloaded")
            }
            if RedisError.transientServerPrefixes.contains(prefix) {
                throw RedisError(kind: .server(prefix), message: message,
                                 context: "execute(pipeline of \(pipeline.count) commands) on \(endpoint)")
            }
        }
        return replies
    }

    /// Runs `body` with a connected `RedisConnection`, reconnecting and
    /// re-running it on retriable failures (a thrown `NOSCRIPT` is retried
    /// too, after the scripts were reloaded). `body` must be idempotent.
    /// Blocking.
    package func withConnection<T>(onRetry: (RedisError, Int) -> Void = { _, _ in },
                                  _ body: (RedisConnection) throws(RedisError) -> T) throws(RedisError) -> T {
        var attempt = 0
        while true {
            do throws(RedisError) {
                let connection = try connected()
                let result = try body(connection)
                isHealthy = true
                return result
            } catch {
                isHealthy = false
                lastError = error
                let noscript = error.kind == .server("NOSCRIPT") && !scripts.isEmpty
                guard error.isRetriable || noscript else { throw error }
                if error.requiresReconnect { drop() }
                if noscript, let connection, connection.isConnected {
                    do throws(RedisError) {
                        for script in scripts { try connection.loadScript(script) }
                    } catch {
                        if error.requiresReconnect { drop() }
                    }
                }
                attempt += 1
                onRetry(error, attempt)
                if shouldStop() { throw error }
                if !sleep(milliseconds: backoff.delayMs(attempt: attempt)) { throw error }
            }
        }
    }

    /// Closes the connection; the next operation reconnects.
    package func close() {
        drop()
    }

    // MARK: - Internals

    private func connected() throws(RedisError) -> RedisConnection {
        if let connection, connection.isConnected { return connection }
        drop()
        let fresh = try RedisConnection(endpoint: endpoint, connectTimeoutMs: connectTimeoutMs,
                                        commandTimeoutMs: commandTimeoutMs)
        for script in scripts { try fresh.loadScript(script) }
        if everConnected { reconnectCount += 1 }
        everConnected = true
        connection = fresh
        return fresh
    }

    private func drop() {
        connection?.close()
        connection = nil
    }

    /// Sleeps in slices of at most 50 ms; false when `shouldStop` became true meanwhile.
    private func sleep(milliseconds: Int) -> Bool {
        var remaining = milliseconds
        while remaining > 0 {
            let slice = min(50, remaining)
            var request = timespec(tv_sec: 0, tv_nsec: slice * 1_000_000)
            var left = timespec()
            while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
            remaining -= slice
            if remaining > 0 && shouldStop() { return false }
        }
        return true
    }
}

/// Not `Sendable`: it owns a `RedisConnection` (one thread only).
@available(*, unavailable)
extension ReconnectingRedis: Sendable {}
