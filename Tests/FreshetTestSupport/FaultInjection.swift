import Foundation

/// Small tools for fault-injection tests: waiting on conditions, reading a
/// process's log, a raw-socket HTTP GET for the admin endpoints, and signals
/// to processes named by a pid file (the broker, Redis).
package enum FaultInjection {
    /// Polls `condition` until it holds or `timeout` seconds pass; returns whether it held.
    @discardableResult
    package static func waitUntil(timeout: TimeInterval, every interval: TimeInterval = 0.2,
                                 _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try condition() { return true }
            if Date() > deadline { return false }
            usleep(UInt32(interval * 1_000_000))
        }
    }

    /// Sleeps `seconds` (whole test thread; these tests are sequential by design).
    package static func pause(_ seconds: TimeInterval) { usleep(UInt32(seconds * 1_000_000)) }

    package static func log(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// Lines of the log at `path` that contain `needle`.
    package static func lines(_ path: String, containing needle: String) -> [Substring] {
        log(path).split(separator: "\n").filter { $0.contains(needle) }
    }

    /// The value of `key=value` in a swift-log line (metadata is printed as `key=value`, space separated).
    package static func metadata(_ key: String, in line: Substring) -> String? {
        for word in line.split(separator: " ") where word.hasPrefix("\(key)=") {
            return String(word.dropFirst(key.count + 1))
        }
        return nil
    }

    /// `task assigned` lines of a freshet log as (task, epoch), in log order.
    package static func assignments(_ path: String) -> [(task: String, epoch: Int64)] {
        lines(path, containing: "task assigned").compactMap { line in
            guard let task = metadata("task", in: line), let epoch = metadata("epoch", in: line).flatMap({ Int64($0) }) else { return nil }
            return (task, epoch)
        }
    }

    /// Tasks named in `task revoked` lines of a freshet log.
    package static func revocations(_ path: String) -> [String] {
        lines(path, containing: "task revoked").compactMap { metadata("task", in: $0) }
    }

    /// Tasks a freshet instance owned when it began its graceful stop (assigned
    /// minus revoked or fenced, up to the `stopping` line).
    package static func ownedAtStop(_ path: String) -> Set<String> {
        var owned: Set<String> = []
        for line in log(path).split(separator: "\n") {
            if line.contains("stopping:") { break }
            guard let task = metadata("task", in: line) else { continue }
            if line.contains("task assigned") { owned.insert(task) }
            if line.contains("task revoked") || line.contains("task fenced") { owned.remove(task) }
        }
        return owned
    }

    /// Sends `signal` to the process whose pid is in `pidFile` (e.g. `tansu.pid`).
    package static func signalPidFile(_ pidFile: String, _ signal: Int32) throws {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestFailure("no pid in \(pidFile)")
        }
        guard kill(pid, signal) == 0 else { throw TestFailure("kill(\(pid), \(signal)) failed: errno \(errno)") }
    }

    /// A minimal HTTP/1.0 GET against 127.0.0.1:`port`: (status, body), or nil when
    /// nothing answers within `timeoutSeconds`.
    package static func httpGet(port: Int, path: String, timeoutSeconds: Int = 2) -> (status: Int, body: String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/"), let statusWord = text.split(separator: " ").dropFirst().first,
              let status = Int(statusWord) else { return nil }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return (status, body)
    }
}
