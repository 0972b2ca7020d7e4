import Foundation

/// A broker and Redis for benchmarks: the local services on free ports, or
/// the ones given by the caller.
public final class BenchmarkCluster {
    public let brokers: String
    public let redisURL: String
    private let services = LocalServices()

    public init(brokers: String?, redisURL: String?, directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if let brokers {
            self.brokers = brokers
        } else {
            let port = try Self.freePort()
            try services.startBroker(port: port, directory: directory)
            self.brokers = "127.0.0.1:\(port)"
        }
        if let redisURL {
            self.redisURL = redisURL
        } else {
            let port = try Self.freePort()
            try services.startRedis(port: port, directory: directory)
            self.redisURL = "redis://127.0.0.1:\(port)"
        }
    }

    public func stop() { services.stopAll() }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard result == 0 else { throw LocalServices.StartError(description: "no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
