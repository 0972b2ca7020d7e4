import Foundation
import FreshetTestSupport
import XCTest
@testable import FreshetKafka

/// Starts a Tansu broker on a free loopback port with scripts/start-broker.sh
/// and stops it with scripts/stop-services.sh.
final class BrokerFixture {
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    let port: Int
    let dir: URL
    var bootstrap: String { "127.0.0.1:\(port)" }
    var config: KafkaConfig { KafkaConfig(bootstrapServers: bootstrap, properties: ["log_level": "3"]) }

    /// Throws XCTSkip when the broker binary is missing or librdkafka too old.
    init() throws {
        let env = ProcessInfo.processInfo.environment
        let tansu = env["FRESHET_TANSU"] ?? Self.repoRoot.appendingPathComponent(".freshet/bin/tansu").path
        guard FileManager.default.isExecutableFile(atPath: tansu) else {
            throw XCTSkip("Tansu broker not found at \(tansu): run `bash scripts/setup.sh && source scripts/env.sh`")
        }
        guard LibrdkafkaVersion.isAtLeast2_1_1 else {
            throw XCTSkip("librdkafka \(LibrdkafkaVersion.string) is loaded; 2.0.2 cannot talk to current brokers "
                + "(librdkafka issue 4278): `source scripts/env.sh` to put .freshet/lib on LD_LIBRARY_PATH")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("freshet-kafka-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var lastError = ""
        for _ in 0..<3 {
            let p = try Self.freePort()
            let (status, out) = try Self.run(["scripts/start-broker.sh", String(p), dir.path])
            if status == 0 {
                port = p
                return
            }
            lastError = out
        }
        throw NSError(domain: "BrokerFixture", code: 1, userInfo: [NSLocalizedDescriptionKey: "start-broker failed: \(lastError)"])
    }

    func stop() {
        _ = try? Self.run(["scripts/stop-services.sh", dir.path])
        try? FileManager.default.removeItem(at: dir)
    }

    /// Runs a repository script: (exit status, output).
    static func run(_ args: [String]) throws -> (Int32, String) {
        guard let script = args.first else { return (2, "no script") }
        do {
            let output = try ChildProcess.runScript(URL(fileURLWithPath: script).lastPathComponent, Array(args.dropFirst()))
            return (0, output)
        } catch {
            return (1, "\(error)")
        }
    }

    static func freePort() throws -> Int { try LocalCluster.freePort() }
}

/// Records rebalance callbacks (they run on the polling thread: the test's).
final class RecordingListener: RebalanceListener {
    var assigned: [[TopicPartition]] = []
    var revoked: [[TopicPartition]] = []
    var lost: [[TopicPartition]] = []
    var startOffsets: [TopicPartition: Int64] = [:]
    /// Commits these offsets inside the revoke callback (what the runtime does).
    var commitOnRevoke: [TopicPartition: Int64] = [:]
    var commitErrors: [KafkaError] = []

    func partitionsAssigned(_ partitions: [TopicPartition], consumer: KafkaConsumer) -> [TopicPartition: Int64] {
        assigned.append(partitions.sorted())
        return startOffsets.filter { partitions.contains($0.key) }
    }

    func partitionsRevoked(_ partitions: [TopicPartition], consumer: KafkaConsumer) {
        revoked.append(partitions.sorted())
        let toCommit = commitOnRevoke.filter { partitions.contains($0.key) }
        do { try consumer.commit(toCommit, synchronous: true) } catch { commitErrors.append(error) }
    }

    func partitionsLost(_ partitions: [TopicPartition], consumer: KafkaConsumer) {
        lost.append(partitions.sorted())
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
func string(_ b: [UInt8]?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }

func now() -> Double { Date().timeIntervalSince1970 }
