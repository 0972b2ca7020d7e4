import Foundation
import FreshetProcess

/// A broker and Redis for benchmarks: the local services on free ports, or
/// the ones given by the caller.
package final class BenchmarkCluster {
    package let brokers: String
    package let redisURL: String
    private let services = LocalServices()

    package init(brokers: String?, redisURL: String?, directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if let brokers {
            self.brokers = brokers
        } else {
            let port = try LoopbackPort.free()
            try services.startBroker(port: port, directory: directory)
            self.brokers = "127.0.0.1:\(port)"
        }
        if let redisURL {
            self.redisURL = redisURL
        } else {
            let port = try LoopbackPort.free()
            try services.startRedis(port: port, directory: directory)
            self.redisURL = "redis://127.0.0.1:\(port)"
        }
    }

    package func stop() { services.stopAll() }

}
