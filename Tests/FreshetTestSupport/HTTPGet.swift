import Foundation

/// A minimal HTTP/1.0 GET over a POSIX socket (no FoundationNetworking), for
/// probing the processor's admin endpoints from tests.
package enum HTTPGet {
    package struct Response {
        package var status: Int
        package var body: String
    }

    /// GET http://127.0.0.1:`port``path`; throws when the connection fails or times out.
    package static func get(port: Int, path: String, timeout: TimeInterval = 5) throws -> Response {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestFailure("connect to 127.0.0.1:\(port) failed: errno \(errno)") }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send to 127.0.0.1:\(port) failed: errno \(errno)") }
            sent += n
        }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw TestFailure("recv from 127.0.0.1:\(port) failed: errno \(errno)") }
            data.append(contentsOf: buffer[0..<n])
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let headerEnd = text.range(of: "\r\n\r\n") else { throw TestFailure("no HTTP header in reply: \(text.prefix(200))") }
        let statusLine = text[..<headerEnd.lowerBound].split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw TestFailure("bad status line: \(statusLine)") }
        return Response(status: status, body: String(text[headerEnd.upperBound...]))
    }

    /// Polls `get` until `accept` holds or the timeout passes; returns the last response.
    package static func waitFor(port: Int, path: String, timeout: TimeInterval,
                               _ accept: (Response) -> Bool) -> Response? {
        let deadline = Date().addingTimeInterval(timeout)
        var last: Response?
        while Date() < deadline {
            if let response = try? get(port: port, path: path, timeout: 2) {
                last = response
                if accept(response) { return response }
            }
            usleep(100_000)
        }
        return last
    }
}
