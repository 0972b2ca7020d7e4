import Foundation
import Synchronization

/// TCP ports on 127.0.0.1, for the local services and the tests.
package enum LoopbackPort {
    /// True when a TCP connection to 127.0.0.1:`port` succeeds (something listens).
    package static func isListening(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// True when 127.0.0.1:`port` can be bound now.
    package static func isFree(_ port: Int) -> Bool {
        (try? bind(port)) != nil
    }

    /// A port the system reports free now (bound to port 0, then released).
    /// Throws `LoopbackPortError` when no socket can be bound.
    package static func free() throws -> Int {
        try bind(0)
    }

    /// A loopback port for a server started soon (a test's, a benchmark's):
    /// free now, below the system's ephemeral port range when it leaves
    /// room, and never handed out before in this process.
    /// A port of the ephemeral range (what `LoopbackPort.free` gives) can be
    /// taken by any outgoing connection between the check and the server's
    /// bind, seconds later for a child's admin port or a cluster node's bus
    /// port (`Address already in use`, a flaky test); no outgoing connection
    /// uses a port below the range.
    /// - Parameter plus: another offset that must be free too, below the
    ///   range as well (a Redis Cluster node's bus port, port + 10000).
    package static func freeForServer(plus offset: Int? = nil) throws -> Int {
        /// `port` (free) is ours: its offset port is free too, and it was never handed out.
        func take(_ port: Int) -> Bool {
            guard offset.map({ port + $0 <= 65_535 && isFree(port + $0) }) ?? true else { return false }
            return handedOut.withLock { $0.insert(port).inserted }
        }
        let candidates = 10_000..<(ephemeralPortRangeLow() - (offset ?? 0))
        for _ in 0..<10_000 where candidates.count >= 1_000 {
            let port = Int.random(in: candidates)
            if isFree(port) && take(port) { return port }
        }
        // No room below the range (a system configured so): any free port.
        while true {
            let port = try free()
            if take(port) { return port }
        }
    }

    private static let handedOut = Mutex<Set<Int>>([])

    /// The low end of `net.ipv4.ip_local_port_range` (32768 when unreadable).
    private static func ephemeralPortRangeLow() -> Int {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32_768
    }

    /// Binds 127.0.0.1:`port` (0: any), releases it and returns the port bound.
    private static func bind(_ port: Int) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LoopbackPortError(port: port, errno: errno) }
        defer { close(fd) }
        var address = loopback(port)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard Foundation.bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard result == 0 else { throw LoopbackPortError(port: port, errno: errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func loopback(_ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}

/// A loopback port could not be bound.
package struct LoopbackPortError: Error, CustomStringConvertible {
    package var port: Int
    package var errno: Int32
    package var description: String {
        "cannot bind 127.0.0.1:\(port): \(String(cString: strerror(errno)))"
    }
}
