#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Pipelined write throughput on one connection, for `freshet bench redis`.
package enum RedisBenchmark {
    package struct Result: Sendable, CustomStringConvertible {
        package var commands: Int
        package var pipelineSize: Int
        package var fieldsPerCommand: Int
        package var seconds: Double
        package var commandsPerSecond: Double { seconds > 0 ? Double(commands) / seconds : 0 }

        package var description: String {
            let rate = Int(commandsPerSecond.rounded())
            let ms = Int((seconds * 1000).rounded())
            return "\(commands) HSETs (\(fieldsPerCommand) fields each, pipelines of \(pipelineSize)) in \(ms) ms: \(rate) commands/s"
        }
    }

    /// Writes `commands` HSETs shaped like Freshet's feature writes
    /// (`{keyPrefix}user:{n}` with `fieldsPerCommand` fields: a counter, a
    /// timestamp, a short JSON list, a 64-float embedding blob) in pipelines
    /// of `pipelineSize`, over `keys` distinct keys, and times it (building
    /// the commands included). Deletes the keys afterwards. Blocking.
    ///
    /// Uses the given database: point it at a scratch database or server.
    package static func run(endpoint: RedisEndpoint, commands: Int = 100_000, pipelineSize: Int = 1000,
                           keys: Int = 10_000, keyPrefix: String = "freshet-bench:") throws(RedisError) -> Result {
        let connection = try RedisConnection(endpoint: endpoint)
        let blob = [UInt8](repeating: 0x3F, count: 64 * 4)
        var pipeline = RedisPipeline(reservingCapacity: pipelineSize * 400)
        let start = monotonicSeconds()
        var sent = 0
        while sent < commands {
            pipeline.removeAll(keepingCapacity: true)
            let batch = min(pipelineSize, commands - sent)
            for offset in 0..<batch {
                let n = sent + offset
                var hset = RedisCommand("HSET")
                hset.append(keyPrefix + "user:" + String(n % max(1, keys)))
                hset.append("interaction_count")
                hset.append(n)
                hset.append("updated_ms")
                hset.append(1_732_700_000_000 + Int64(n))
                hset.append("recent_items_50")
                hset.append("[\"i\(n % 97)\",\"i\(n % 89)\",\"i\(n % 83)\"]")
                hset.append("embedding_64d")
                hset.append(blob)
                pipeline.add(hset)
            }
            let replies = try connection.execute(pipeline)
            if let bad = replies.first(where: \.isError) {
                throw RedisError.server(bad.errorMessage ?? "", context: "RedisBenchmark.run on \(endpoint)")
            }
            sent += batch
        }
        let seconds = monotonicSeconds() - start

        // Clean up.
        var cleanup = RedisPipeline()
        for n in 0..<min(max(1, keys), commands) {
            cleanup.add(.del(keyPrefix + "user:" + String(n)))
        }
        _ = try connection.execute(cleanup)
        return Result(commands: commands, pipelineSize: pipelineSize, fieldsPerCommand: 4, seconds: seconds)
    }

    static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
