import Foundation
import FreshetTestSupport
import XCTest
@testable import FreshetKafka

/// A Tansu broker on a free loopback port, started with `LocalServices`.
final class BrokerFixture {
    let port: Int
    let dir: URL
    private let services = LocalServices()
    var bootstrap: String { "127.0.0.1:\(port)" }
    var config: KafkaConfig { KafkaConfig(bootstrapServers: bootstrap, properties: ["log_level": "3"]) }

    /// Throws XCTSkip when the broker binary is missing or librdkafka too old.
    init() throws {
        let env = ProcessInfo.processInfo.environment
        let tansu = env["FRESHET_TANSU"] ?? LocalCluster.packageRoot + "/.freshet/bin/tansu"
        guard FileManager.default.isExecutableFile(atPath: tansu) else {
            throw XCTSkip("Tansu broker not found at \(tansu): run `bash scripts/setup.sh && source scripts/env.sh`")
        }
        guard LibrdkafkaVersion.isAtLeast2_1_1 else {
            throw XCTSkip("librdkafka \(LibrdkafkaVersion.string) is loaded; 2.0.2 cannot talk to current brokers "
                + "(librdkafka issue 4278): `source scripts/env.sh` to put .freshet/lib on LD_LIBRARY_PATH")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("freshet-kafka-\(UUID().uuidString)")
        port = try LocalCluster.freePort()
        try services.startBroker(port: port, directory: dir.path, ifInUse: .fail)
    }

    func stop() {
        services.stopAll()
        try? FileManager.default.removeItem(at: dir)
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
