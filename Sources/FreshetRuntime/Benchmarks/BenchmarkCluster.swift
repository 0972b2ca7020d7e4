import Foundation
import FreshetProcess

/// A broker and Redis for benchmarks: the local services on free ports, or
/// the ones given by the caller.
package final class BenchmarkCluster {
    package let brokers: String
    package let redisURL: String
    private let services = LocalServices()
    private var brokerPort: Int?
    private var redisPort: Int?

    package init(brokers: String?, redisURL: String?, directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if let brokers {
            self.brokers = brokers
        } else {
            let port = try LoopbackPort.freeForServer()
            try services.startBroker(port: port, directory: directory)
            brokerPort = port
            self.brokers = "127.0.0.1:\(port)"
        }
        if let redisURL {
            self.redisURL = redisURL
        } else {
            let port = try LoopbackPort.freeForServer()
            try services.startRedis(port: port, directory: directory)
            redisPort = port
            self.redisURL = "redis://127.0.0.1:\(port)"
        }
    }

    package func stop() { services.stopAll() }

    /// CPU seconds used so far by the broker and Redis started here (nil for
    /// a server given on the command line: it may be shared or remote).
    package func serviceCPUSeconds() -> (broker: Double?, redis: Double?) {
        (brokerPort.flatMap { services.cpuSeconds(port: $0) }, redisPort.flatMap { services.cpuSeconds(port: $0) })
    }

}
