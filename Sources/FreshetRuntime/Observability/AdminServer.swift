// A tiny HTTP/1.1 admin server over POSIX sockets: /metrics, /healthz, /readyz,
// /tasks (owned tasks and their progress, JSON).
//
// One thread accepts and serves connections one at a time (scrapes and probes
// are small and rare). Each connection gets a total deadline and a request size
// limit, so a slow or bad client delays others by at most `requestDeadline`;
// responses always close the connection. The accept loop polls the listening
// socket together with a wake-up pipe, so `stop()` returns promptly.
//
// The server binds to loopback unless told otherwise: metrics name topics and
// partitions, which are not for the whole network by default.

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `/readyz` reports.
package struct Readiness: Sendable, Equatable {
    package var isReady: Bool
    /// Why the process is not ready (empty when ready), e.g. "redis unreachable".
    package var reasons: [String]

    package init(isReady: Bool, reasons: [String] = []) {
        self.isReady = isReady
        self.reasons = reasons
    }

    package static let ready = Readiness(isReady: true)

    package static func notReady(_ reasons: [String]) -> Readiness {
        Readiness(isReady: false, reasons: reasons)
    }

    /// Not ready exactly when some reason is given.
    package static func from(reasons: [String]) -> Readiness {
        Readiness(isReady: reasons.isEmpty, reasons: reasons)
    }

    /// Body of the `/readyz` answer.
    package var body: String {
        if isReady { return "ready\n" }
        return reasons.isEmpty ? "not ready\n" : "not ready: " + reasons.joined(separator: "; ") + "\n"
    }
}

package enum AdminServerError: Error, Equatable, CustomStringConvertible {
    /// The host is not a loopback address and `allowNonLoopback` was false.
    case nonLoopbackBindRefused(host: String)
    /// The host could not be resolved to an address.
    case invalidAddress(host: String, reason: String)
    /// A socket call failed.
    case socketFailed(operation: String, errno: Int32, message: String)
    case alreadyRunning

    package var description: String {
        switch self {
        case .nonLoopbackBindRefused(let host):
            return "admin server: refusing to bind to non-loopback address '\(host)' "
                + "(metrics would be reachable from the network); bind to 127.0.0.1 or allow it explicitly"
        case .invalidAddress(let host, let reason):
            return "admin server: cannot use address '\(host)': \(reason)"
        case .socketFailed(let op, let err, let message):
            return "admin server: \(op) failed: \(message) (errno \(err))"
        case .alreadyRunning:
            return "admin server: already running"
        }
    }
}

package final class AdminServer: Sendable {
    /// Suggested default port for the admin endpoint.
    package static let defaultPort: UInt16 = 9464
    /// Largest accepted request head (request line and headers).
    package static let maxRequestBytes = 8 * 1024

    package let host: String
    package let requestedPort: UInt16
    package let allowNonLoopback: Bool
    /// Total time one client gets to send its request.
    package let requestDeadline: Double

    private let metricsText: @Sendable () -> String
    private let readiness: @Sendable () -> Readiness
    /// The `/tasks` body (JSON), nil when this server has none to show (404).
    private let tasksJSON: (@Sendable () -> String)?

    private struct State: Sendable {
        var listenFD: Int32 = -1
        var wakeRead: Int32 = -1
        var wakeWrite: Int32 = -1
        var boundPort: UInt16 = 0
        var running = false
        var exited: DispatchSemaphoreBox? = nil
    }
    private let state = Mutex(State())
    private let stopping = Atomic<Bool>(false)

    /// - Parameters:
    ///   - host: numeric IPv4/IPv6 address or `localhost`; loopback only unless `allowNonLoopback`.
    ///   - port: TCP port; 0 picks a free one (see `port` after `start()`).
    ///   - metrics: produces the `/metrics` body (Prometheus text format 0.0.4).
    ///   - readiness: decides `/readyz`.
    ///   - tasks: produces the `/tasks` body (`OwnershipSnapshot.json`); nil answers 404 there.
    ///     Called on the admin thread: it must only read published values, never task state.
    /// - Throws: `AdminServerError.nonLoopbackBindRefused` for e.g. `0.0.0.0` without `allowNonLoopback`.
    package init(host: String = "127.0.0.1", port: UInt16 = 0, allowNonLoopback: Bool = false,
                requestDeadline: Double = 2.0,
                metrics: @escaping @Sendable () -> String,
                readiness: @escaping @Sendable () -> Readiness = { .ready },
                tasks: (@Sendable () -> String)? = nil) throws {
        if !allowNonLoopback && !AdminServer.isLoopback(host) {
            throw AdminServerError.nonLoopbackBindRefused(host: host)
        }
        self.host = host
        self.requestedPort = port
        self.allowNonLoopback = allowNonLoopback
        self.requestDeadline = requestDeadline
        self.metricsText = metrics
        self.readiness = readiness
        self.tasksJSON = tasks
    }

    /// Serves `metrics.render()` on `/metrics`.
    package convenience init(host: String = "127.0.0.1", port: UInt16 = 0, allowNonLoopback: Bool = false,
                            metrics: FreshetMetrics,
                            readiness: @escaping @Sendable () -> Readiness = { .ready }) throws {
        try self.init(host: host, port: port, allowNonLoopback: allowNonLoopback,
                      metrics: { metrics.render() }, readiness: readiness)
    }

    deinit { stop() }

    /// The bound port once started (the requested one before).
    package var port: UInt16 {
        state.withLock { $0.running ? $0.boundPort : requestedPort }
    }

    package var isRunning: Bool { state.withLock { $0.running } }

    /// Whether `host` names a loopback address: `localhost`, 127.0.0.0/8, `::1`
    /// (also bracketed, and IPv4-mapped `::ffff:127.x.y.z`).
    package static func isLoopback(_ host: String) -> Bool {
        var h = host.trimmingCharacters(in: .whitespaces)
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.lowercased() == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, h, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, h, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 127 {
                return true
            }
        }
        return false
    }

    // MARK: Lifecycle

    /// Binds, listens and starts the serving thread.
    package func start() throws {
        try state.withLock { st in
            if st.running { throw AdminServerError.alreadyRunning }
            let (fd, port) = try Self.bindAndListen(host: host, port: requestedPort)
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else {
                let e = errno
                close(fd)
                throw AdminServerError.socketFailed(operation: "pipe", errno: e, message: Self.errorText(e))
            }
            for p in fds { _ = fcntl(p, F_SETFD, FD_CLOEXEC) }
            _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
            st.listenFD = fd
            st.wakeRead = fds[0]
            st.wakeWrite = fds[1]
            st.boundPort = port
            st.running = true
            let exited = DispatchSemaphoreBox()
            st.exited = exited
            let wakeRead = fds[0]
            stopping.store(false, ordering: .sequentiallyConsistent)
            let thread = Thread { [self] in
                self.serve(listenFD: fd, wakeFD: wakeRead)
                exited.semaphore.signal()
            }
            thread.name = "freshet-admin"
            thread.start()
        }
    }

    /// Closes the listening socket and waits (at most `timeout` seconds) for the thread to end.
    package func stop(timeout: Double = 5.0) {
        let taken: State? = state.withLock { st in
            guard st.running else { return nil }
            let copy = st
            st = State()
            return copy
        }
        guard let st = taken else { return }
        stopping.store(true, ordering: .sequentiallyConsistent)
        var byte: UInt8 = 1
        _ = write(st.wakeWrite, &byte, 1)
        let joined = st.exited?.semaphore.wait(timeout: .now() + timeout) == .success
        if joined {
            close(st.listenFD)
            close(st.wakeRead)
            close(st.wakeWrite)
        }
        // If the thread did not end in time it still owns the descriptors: leaking
        // them is safer than closing a descriptor number another thread may reuse.
    }

    // MARK: Socket set-up

    private static func bindAndListen(host: String, port: UInt16) throws -> (Int32, UInt16) {
        var h = host
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.lowercased() == "localhost" { h = "127.0.0.1" }

        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var result: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(h.isEmpty ? nil : h, String(port), &hints, &result)
        guard rc == 0, let info = result else {
            throw AdminServerError.invalidAddress(host: host, reason: String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(result) }

        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw socketError("socket") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let err = socketError("bind \(host):\(port)")
            close(fd)
            throw err
        }
        guard listen(fd, 64) == 0 else {
            let err = socketError("listen")
            close(fd)
            throw err
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)

        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard ok == 0 else {
            let err = socketError("getsockname")
            close(fd)
            throw err
        }
        let bound: UInt16
        if Int32(storage.ss_family) == AF_INET6 {
            bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
        } else {
            bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            }
        }
        return (fd, bound)
    }

    private static func socketError(_ op: String) -> AdminServerError {
        let e = errno
        return .socketFailed(operation: op, errno: e, message: errorText(e))
    }

    private static func errorText(_ e: Int32) -> String {
        String(cString: strerror(e))
    }

    // MARK: Serving

    private func serve(listenFD: Int32, wakeFD: Int32) {
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        while !stopping.load(ordering: .sequentiallyConsistent) {
            fds[0].revents = 0
            fds[1].revents = 0
            let n = poll(&fds, 2, 1000)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 || stopping.load(ordering: .sequentiallyConsistent) { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let client = accept(listenFD, nil, nil)
            if client < 0 { continue }  // EAGAIN, ECONNABORTED, EMFILE, ...: poll again
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) & ~O_NONBLOCK)
            handle(client: client)
            close(client)
        }
    }

    private func handle(client: Int32) {
        // Short per-read timeout so the total deadline and stop() are honoured.
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        _ = setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var sendTV = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &sendTV, socklen_t(MemoryLayout<timeval>.size))

        let deadline = MonotonicClock.seconds() + requestDeadline
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        var complete = false
        while true {
            if let _ = Self.headEnd(buffer) { complete = true; break }
            if buffer.count > Self.maxRequestBytes { break }
            if stopping.load(ordering: .relaxed) || MonotonicClock.seconds() > deadline { break }
            let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
            } else if n == 0 {
                break  // client closed before finishing its request
            } else if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                continue
            } else {
                break
            }
        }
        let response: HTTPResponse
        if complete {
            response = respond(toHead: buffer)
        } else if buffer.count > Self.maxRequestBytes {
            response = HTTPResponse(status: 431, reason: "Request Header Fields Too Large", body: "request too large\n")
        } else if buffer.isEmpty {
            return
        } else {
            response = HTTPResponse(status: 408, reason: "Request Timeout", body: "request timeout\n")
        }
        send(response, to: client)
    }

    struct HTTPResponse {
        var status: Int
        var reason: String
        var contentType = "text/plain; charset=utf-8"
        var body: String
        var headOnly = false
        var extraHeaders: [(String, String)] = []
    }

    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4)
        where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }

    /// Routes one request head (request line and headers, up to the blank line).
    func respond(toHead bytes: [UInt8]) -> HTTPResponse {
        let end = Self.headEnd(bytes) ?? bytes.count
        guard let head = String(bytes: bytes[0..<end], encoding: .utf8),
              let requestLine = head.split(separator: "\r\n", maxSplits: 1, omittingEmptySubsequences: false).first
        else {
            return HTTPResponse(status: 400, reason: "Bad Request", body: "bad request\n")
        }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return HTTPResponse(status: 400, reason: "Bad Request", body: "bad request\n")
        }
        let method = String(parts[0])
        var path = String(parts[1])
        if let q = path.firstIndex(of: "?") { path = String(path[..<q]) }
        guard method == "GET" || method == "HEAD" else {
            var r = HTTPResponse(status: 405, reason: "Method Not Allowed", body: "method not allowed\n")
            r.extraHeaders = [("Allow", "GET, HEAD")]
            return r
        }
        var response: HTTPResponse
        switch path {
        case "/metrics":
            response = HTTPResponse(status: 200, reason: "OK", contentType: FreshetMetrics.contentType,
                                    body: metricsText())
        case "/tasks":
            if let tasksJSON {
                response = HTTPResponse(status: 200, reason: "OK", contentType: "application/json", body: tasksJSON())
            } else {
                response = HTTPResponse(status: 404, reason: "Not Found", body: "not found\n")
            }
        case "/healthz":
            response = HTTPResponse(status: 200, reason: "OK", body: "ok\n")
        case "/readyz":
            let r = readiness()
            response = r.isReady
                ? HTTPResponse(status: 200, reason: "OK", body: r.body)
                : HTTPResponse(status: 503, reason: "Service Unavailable", body: r.body)
        default:
            response = HTTPResponse(status: 404, reason: "Not Found", body: "not found\n")
        }
        response.headOnly = method == "HEAD"
        return response
    }

    private func send(_ r: HTTPResponse, to fd: Int32) {
        let body = Array(r.body.utf8)
        var head = "HTTP/1.1 \(r.status) \(r.reason)\r\n"
        head += "Content-Type: \(r.contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        for (k, v) in r.extraHeaders { head += "\(k): \(v)\r\n" }
        head += "Connection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        if !r.headOnly { bytes += body }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Self.sendNoSignal(fd, raw.baseAddress! + offset, raw.count - offset)
            }
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return  // peer gone or send timeout: drop the response
            }
        }
        _ = shutdown(fd, Int32(SHUT_WR))
        // Lingering close: read what the client still sends (bounded) so that closing
        // with unread input does not reset the connection before it reads the answer.
        let until = MonotonicClock.seconds() + 0.25
        var sink = [UInt8](repeating: 0, count: 4096)
        var drained = 0
        while drained < 256 * 1024 && MonotonicClock.seconds() < until {
            let n = sink.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { drained += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
            break
        }
    }
}

extension AdminServer {
    /// send(2) that never raises SIGPIPE when the peer has gone.
    fileprivate static func sendNoSignal(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.send(fd, p, n, Int32(MSG_NOSIGNAL))
        #else
        return Darwin.send(fd, p, n, 0)
        #endif
    }
}

/// A semaphore in a class so a `Sendable` state struct can hold it.
final class DispatchSemaphoreBox: @unchecked Sendable {
    let semaphore = DispatchSemaphore(value: 0)
}
