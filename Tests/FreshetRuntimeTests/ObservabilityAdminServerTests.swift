import XCTest
import Foundation
import Synchronization
@testable import FreshetRuntime

#if canImport(Glibc)
import Glibc
#endif

final class ObservabilityAdminServerTests: XCTestCase {
    /// Connects to 127.0.0.1:port, sends `raw`, reads until the server closes.
    private func exchange(port: UInt16, raw: String, closeWrite: Bool = false) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let bytes = Array(raw.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if closeWrite { shutdown(fd, Int32(SHUT_WR)) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func get(_ port: UInt16, _ path: String) throws -> String {
        try exchange(port: port, raw: "GET \(path) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n")
    }

    private func makeServer(readiness: @escaping @Sendable () -> Readiness = { .ready }) throws
        -> (AdminServer, FreshetMetrics) {
        let metrics = FreshetMetrics(version: "test", librdkafkaVersion: "2.3.0")
        let server = try AdminServer(metrics: metrics, readiness: readiness)
        try server.start()
        XCTAssertNotEqual(server.port, 0)
        return (server, metrics)
    }

    func testMetricsHealthzAnd404() throws {
        let (server, metrics) = try makeServer()
        defer { server.stop() }
        metrics.recordsConsumed(topic: "interactions", partition: 0).increment(by: 7)

        let m = try get(server.port, "/metrics")
        XCTAssertTrue(m.hasPrefix("HTTP/1.1 200 OK\r\n"), m)
        XCTAssertTrue(m.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        XCTAssertTrue(m.contains("Connection: close\r\n"))
        XCTAssertTrue(m.contains("freshet_records_consumed_total{partition=\"0\",topic=\"interactions\"} 7\n"))
        let body = m.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        XCTAssertTrue(m.contains("Content-Length: \(body.utf8.count)\r\n"))

        let h = try get(server.port, "/healthz")
        XCTAssertTrue(h.hasPrefix("HTTP/1.1 200 OK\r\n"))
        XCTAssertTrue(h.hasSuffix("\r\n\r\nok\n"))

        let q = try get(server.port, "/metrics?debug=1")
        XCTAssertTrue(q.hasPrefix("HTTP/1.1 200 OK\r\n"))

        let n = try get(server.port, "/nope")
        XCTAssertTrue(n.hasPrefix("HTTP/1.1 404 Not Found\r\n"))

        let p = try exchange(port: server.port, raw: "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        XCTAssertTrue(p.hasPrefix("HTTP/1.1 405 "))

        let bad = try exchange(port: server.port, raw: "garbage\r\n\r\n")
        XCTAssertTrue(bad.hasPrefix("HTTP/1.1 400 "))

        let head = try exchange(port: server.port, raw: "HEAD /healthz HTTP/1.1\r\n\r\n")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        XCTAssertTrue(head.hasSuffix("\r\n\r\n"))
    }

    func testReadyzBothWays() throws {
        let reasons = Mutex<[String]>(["redis unreachable", "partitions restoring"])
        let (server, _) = try makeServer(readiness: { Readiness.from(reasons: reasons.withLock { $0 }) })
        defer { server.stop() }

        let notReady = try get(server.port, "/readyz")
        XCTAssertTrue(notReady.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), notReady)
        XCTAssertTrue(notReady.hasSuffix("\r\n\r\nnot ready: redis unreachable; partitions restoring\n"))

        reasons.withLock { $0 = [] }
        let ready = try get(server.port, "/readyz")
        XCTAssertTrue(ready.hasPrefix("HTTP/1.1 200 OK\r\n"), ready)
        XCTAssertTrue(ready.hasSuffix("\r\n\r\nready\n"))
    }

    func testRefusesNonLoopbackUnlessAllowed() throws {
        for host in ["0.0.0.0", "::", "10.1.2.3", "example.com", ""] {
            XCTAssertThrowsError(try AdminServer(host: host, metrics: { "" })) { error in
                XCTAssertEqual(error as? AdminServerError, .nonLoopbackBindRefused(host: host))
            }
        }
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] {
            XCTAssertTrue(AdminServer.isLoopback(host), host)
        }
        let allowed = try AdminServer(host: "0.0.0.0", allowNonLoopback: true, metrics: { "m\n" })
        try allowed.start()
        defer { allowed.stop() }
        let r = try get(allowed.port, "/metrics")
        XCTAssertTrue(r.hasSuffix("\r\n\r\nm\n"))
    }

    func testBadClientsDoNotBlockTheServer() throws {
        let server = try AdminServer(requestDeadline: 0.5, metrics: { "m\n" })
        try server.start()
        defer { server.stop() }

        // A client that sends half a request and closes.
        let half = try exchange(port: server.port, raw: "GET /metr", closeWrite: true)
        XCTAssertTrue(half.isEmpty || half.hasPrefix("HTTP/1.1 408"), half)

        // A client that stalls: answered with 408 after the deadline.
        let start = Date()
        let stalled = try exchange(port: server.port, raw: "GET /metrics HTTP/1.1\r\n")
        XCTAssertTrue(stalled.hasPrefix("HTTP/1.1 408 "), stalled)
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)

        // An oversized request head.
        let big = "GET /metrics HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 20_000) + "\r\n\r\n"
        let tooBig = try exchange(port: server.port, raw: big)
        XCTAssertTrue(tooBig.hasPrefix("HTTP/1.1 431 "), String(tooBig.prefix(40)))

        // Still serving.
        XCTAssertTrue(try get(server.port, "/healthz").hasPrefix("HTTP/1.1 200 OK"))
    }

    func testStopIsPromptAndRestartable() throws {
        let server = try AdminServer(metrics: { "" })
        try server.start()
        XCTAssertThrowsError(try server.start()) { XCTAssertEqual($0 as? AdminServerError, .alreadyRunning) }
        let port = server.port
        let t0 = Date()
        server.stop()
        XCTAssertLessThan(Date().timeIntervalSince(t0), 1.0)
        XCTAssertFalse(server.isRunning)
        XCTAssertThrowsError(try get(port, "/healthz"))
        server.stop()  // idempotent
        try server.start()
        XCTAssertTrue(try get(server.port, "/healthz").hasPrefix("HTTP/1.1 200 OK"))
        server.stop()
    }

    func testReadinessBody() {
        XCTAssertEqual(Readiness.ready.body, "ready\n")
        XCTAssertEqual(Readiness.notReady(["a", "b"]).body, "not ready: a; b\n")
        XCTAssertEqual(Readiness.from(reasons: []), .ready)
    }
}
