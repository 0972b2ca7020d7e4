import Foundation
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

    /// Runs a repository script with bash, output captured through a file.
    /// (posix_spawn + waitpid: Foundation's Process.waitUntilExit can hang on Linux.)
    static func run(_ args: [String]) throws -> (Int32, String) {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("freshet-script-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: out) }
        let quoted = args.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let command = "cd '\(repoRoot.path)' && bash \(quoted) >'\(out.path)' 2>&1 </dev/null"
        var pid: pid_t = 0
        let strings: [String] = ["/bin/bash", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let rc = posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ)
        guard rc == 0 else { throw NSError(domain: "BrokerFixture", code: Int(rc)) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        let exited = (status & 0x7f) == 0
        return (exited ? (status >> 8) & 0xff : -1, text)
    }

    /// A port the kernel just handed out (bind to port 0, read it, close).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NSError(domain: "BrokerFixture", code: 2) }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { ptr -> Int32 in
                guard bind(fd, ptr, len) == 0 else { return -1 }
                return getsockname(fd, ptr, &len)
            }
        }
        guard rc == 0 else { throw NSError(domain: "BrokerFixture", code: 3) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
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
