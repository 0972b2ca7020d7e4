import ArgumentParser
import Foundation
import FreshetProcess
import FreshetRuntime

/// `--brokers` and `--redis`, with `FRESHET_BROKERS` / `FRESHET_REDIS_URL`
/// standing in for them. Without either, commands use the embedded default's
/// local ports (what `freshet run` starts on a first run).
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers, host:port[,host:port] (env FRESHET_BROKERS).")
    var brokers: String?

    @Option(help: "Redis URL: redis://[user:password@]host:port[/db], unix:///path/redis.sock, or a cluster: redis+cluster://host:port[,host:port] (env FRESHET_REDIS_URL).")
    var redis: String?

    var givenBrokers: String? { brokers ?? ProcessInfo.processInfo.environment["FRESHET_BROKERS"] }
    var givenRedis: String? { redis ?? ProcessInfo.processInfo.environment["FRESHET_REDIS_URL"] }

    var resolvedBrokers: String { givenBrokers ?? "127.0.0.1:\(Self.localBrokerPort)" }
    var resolvedRedis: String { givenRedis ?? "redis://127.0.0.1:\(Self.localRedisPort)" }

    /// The embedded default's ports: `FRESHET_LOCAL_BROKER_PORT` and
    /// `FRESHET_LOCAL_REDIS_PORT` move them (for `freshet run` and for the
    /// commands that read what it wrote), else the defaults.
    static var localBrokerPort: Int {
        ProcessInfo.processInfo.environment["FRESHET_LOCAL_BROKER_PORT"].flatMap { Int($0) } ?? LocalServices.defaultBrokerPort
    }
    static var localRedisPort: Int {
        ProcessInfo.processInfo.environment["FRESHET_LOCAL_REDIS_PORT"].flatMap { Int($0) } ?? LocalServices.defaultRedisPort
    }
}
