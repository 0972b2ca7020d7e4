import Foundation

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
