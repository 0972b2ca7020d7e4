import XCTest
import Foundation
import Synchronization
@testable import FreshetRuntime

final class ObservabilityProgressTests: XCTestCase {
    func testFormatLine() {
        let wm: Int64 = 1_795_802_394_000  // 2026-11-27T17:59:54Z
        XCTAssertEqual(ProgressReporter.formatLine(events: 123_456, eventsPerSecond: 98_765.4, lag: 1_234, watermarkMs: wm),
                       "freshet: 123,456 events (98,765 ev/s), lag 1,234, watermark 2026-11-27T17:59:54Z")
        XCTAssertEqual(ProgressReporter.formatLine(events: 0, eventsPerSecond: 0, lag: nil, watermarkMs: nil),
                       "freshet: 0 events (0 ev/s), lag ?, watermark none")
        XCTAssertEqual(ProgressReporter.formatLine(events: 5, eventsPerSecond: .nan, lag: 0, watermarkMs: Int64.min),
                       "freshet: 5 events (0 ev/s), lag 0, watermark none")
    }

    func testGroupThousands() {
        XCTAssertEqual(ProgressReporter.groupThousands(0), "0")
        XCTAssertEqual(ProgressReporter.groupThousands(999), "999")
        XCTAssertEqual(ProgressReporter.groupThousands(1000), "1,000")
        XCTAssertEqual(ProgressReporter.groupThousands(1_234_567), "1,234,567")
        XCTAssertEqual(ProgressReporter.groupThousands(-1234), "-1,234")
        XCTAssertEqual(ProgressReporter.groupThousands(Int.min), "-9,223,372,036,854,775,808")
    }

    func testISO8601() {
        XCTAssertEqual(ProgressReporter.iso8601UTC(epochMs: 0), "1970-01-01T00:00:00Z")
        XCTAssertEqual(ProgressReporter.iso8601UTC(epochMs: 1_732_700_000_000), "2024-11-27T09:33:20Z")
        XCTAssertEqual(ProgressReporter.iso8601UTC(epochMs: 951_782_400_999), "2000-02-29T00:00:00Z")
        XCTAssertEqual(ProgressReporter.iso8601UTC(epochMs: -1), "1969-12-31T23:59:59Z")
        XCTAssertNil(ProgressReporter.iso8601UTC(epochMs: Int64.min))
        // Agrees with Foundation over a spread of instants.
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        for ms in stride(from: Int64(-2_000_000_000_000), to: 4_000_000_000_000, by: 77_777_777_777) {
            let expected = f.string(from: Date(timeIntervalSince1970: (Double(ms) / 1000).rounded(.down)))
            XCTAssertEqual(ProgressReporter.iso8601UTC(epochMs: ms), expected, "\(ms)")
        }
    }

    func testRate() {
        XCTAssertEqual(ProgressReporter.rate(events: 1000, seconds: 2), 500)
        XCTAssertEqual(ProgressReporter.rate(events: -5, seconds: 2), 0)
        XCTAssertEqual(ProgressReporter.rate(events: 5, seconds: 0), 0)
    }

    func testTimerPrintsLines() {
        let lines = Mutex<[String]>([])
        let counter = Mutex(0)
        let reporter = ProgressReporter(interval: 0.05,
                                        events: { counter.withLock { $0 += 100; return $0 } },
                                        lag: { 7 }, watermarkMs: { nil },
                                        output: { line in lines.withLock { $0.append(line) } })
        reporter.start()
        let deadline = Date().addingTimeInterval(5)
        while lines.withLock({ $0.count }) < 2 && Date() < deadline { usleep(10_000) }
        reporter.stop()
        let got = lines.withLock { $0 }
        XCTAssertGreaterThanOrEqual(got.count, 2)
        XCTAssertTrue(got.allSatisfy { $0.hasPrefix("freshet: ") && $0.hasSuffix(", lag 7, watermark none") }, "\(got)")
        let count = got.count
        usleep(200_000)
        XCTAssertEqual(lines.withLock { $0.count }, count, "no lines after stop")
    }
}
