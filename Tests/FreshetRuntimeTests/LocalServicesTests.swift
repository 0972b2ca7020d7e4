import Foundation
import FreshetRuntime
import FreshetTestSupport
import XCTest

/// The embedded default's local services must stop on SIGTERM even when the
/// thread that spawned them blocks signals (a child inherits the mask), and
/// leave no pid file behind once stopped.
final class LocalServicesTests: XCTestCase {
    func testServicesSpawnedWithSignalsBlockedStillStopOnSigterm() throws {
        let directory = NSTemporaryDirectory() + "freshet-local-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try LocalCluster.freePort()
        let services = LocalServices()
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        sigaddset(&blocked, SIGINT)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        let started = Result { try services.startRedis(port: port, directory: directory) }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        try started.get()

        let pidFile = "\(directory)/redis.pid"
        let pid = try XCTUnwrap(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let sigBlk = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("SigBlk:") })
        let mask = try XCTUnwrap(UInt64(sigBlk.split(separator: "\t").last.map(String.init) ?? "", radix: 16))
        XCTAssertEqual(mask & (1 << UInt64(SIGTERM - 1)), 0, "SIGTERM blocked in the child: \(sigBlk)")
        XCTAssertEqual(mask & (1 << UInt64(SIGINT - 1)), 0, "SIGINT blocked in the child: \(sigBlk)")

        let stopping = Date()
        services.stopAll()
        XCTAssertLessThan(Date().timeIntervalSince(stopping), 4, "stopped by SIGTERM, not by the SIGKILL 5 s later")
        XCTAssertFalse(LoopbackPort.isListening(port))
        XCTAssertFalse(FileManager.default.fileExists(atPath: pidFile), "the pid file goes with its process")
    }
}
