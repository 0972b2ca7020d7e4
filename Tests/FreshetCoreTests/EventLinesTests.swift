import XCTest
import FreshetCore

/// `EventLines` (what `freshet eval` replays) accepts and rejects exactly what
/// the processor's decoder does. The rejected lines below were all accepted by
/// eval's former Foundation parser (JSONSerialization), which trained on events
/// the processor dead-letters.
final class EventLinesTests: XCTestCase {
    let now: EventTimeMs = 1_732_700_000_000

    func lines(_ text: String) -> EventLines { EventLines(Array(text.utf8), nowMs: now) }

    func testValidLinesDecodeAsTheProcessorDecodesThem() throws {
        let interaction = #"{"user_id":"u1","item_id":42,"action":"click","dwell_ms":1500,"ts":1732600000000,"request_id":"r1"}"#
        let impression = #"{"request_id":"r1","user_id":7,"items_shown":["a","b"],"positions":[3,4],"ts":1732600000500}"#
        let read = lines(interaction + "\n\n" + impression + "\n")
        XCTAssertEqual(read.rejected, [])
        XCTAssertEqual(read.events, [
            .interaction(Interaction(userId: "u1", itemId: "42", action: .click, dwellMs: 1500, ts: 1_732_600_000_000, requestId: "r1")),
            .impression(Impression(requestId: "r1", userId: "7", itemsShown: ["a", "b"], positions: [3, 4], ts: 1_732_600_000_500)),
        ])
        let decoder = EventDecoder()
        XCTAssertEqual(read.events[0], .interaction(try decoder.decodeInteraction(Array(interaction.utf8), messageTimestampMs: nil, nowMs: now)))
        XCTAssertEqual(read.events[1], .impression(try decoder.decodeImpression(Array(impression.utf8), messageTimestampMs: nil, nowMs: now)))
    }

    func testLinesTheOldParserAcceptedAreRejectedWithTheProcessorsReason() {
        let bad: [(String, BadInput.Reason)] = [
            (#"{"user_id":"u1","item_id":"a","action":"click","dwell_ms":-5,"ts":1732600000000}"#, .invalidField),
            (#"{"user_id":"","item_id":"a","action":"click","ts":1732600000000}"#, .invalidField),
            (#"{"user_id":"u1","item_id":42.0,"action":"click","ts":1732600000000}"#, .wrongType),
            (#"{"user_id":"u1","item_id":"a","action":"click","ts":1732600000000.5}"#, .wrongType),
            (#"{"user_id":"u1","item_id":"a","action":"click","ts":4102444800000}"#, .timestampOutOfRange),
            (#"{"user_id":"u1","items_shown":["a","b"],"positions":[0],"ts":1732600000000}"#, .invalidField),
        ]
        let good = #"{"user_id":"u1","item_id":"a","action":"like","ts":1732600000000}"#
        let read = lines(([good] + bad.map(\.0)).joined(separator: "\n"))
        XCTAssertEqual(read.events.count, 1)
        XCTAssertEqual(read.rejected.map(\.line), Array(2...(bad.count + 1)))
        XCTAssertEqual(read.rejected.map(\.problem.reason), bad.map(\.1))
        // Line for line, the same verdict as the decoder on the matching topic.
        let decoder = EventDecoder()
        for (json, _) in bad {
            let bytes = Array(json.utf8)
            let isImpression = EventDecoder.routing(bytes)?.isImpression == true
            XCTAssertThrowsError(isImpression
                ? try decoder.decodeImpression(bytes, messageTimestampMs: nil, nowMs: now) as Any
                : try decoder.decodeInteraction(bytes, messageTimestampMs: nil, nowMs: now) as Any, json)
        }
    }

    func testAFileLineHasNoMessageTimestampToFallBackTo() {
        let read = lines(#"{"user_id":"u1","item_id":"a","action":"click"}"#)
        XCTAssertEqual(read.events, [])
        XCTAssertEqual(read.rejected.map(\.problem.reason), [.missingField])
    }

    /// (A line of blanks only is no event: skipped, `testAByteOrderMarkAndBlankLinesAreNotEvents`.)
    func testNonObjectsAndBrokenLinesAreRejectedNotSkipped() {
        let read = lines("[1,2]\n{\"user_id\":\n \n\"x\"")
        XCTAssertEqual(read.events, [])
        XCTAssertEqual(read.rejected.map(\.line), [1, 2, 4])
        XCTAssertEqual(read.rejected.map(\.problem.reason), [.notAnObject, .malformedJSON, .notAnObject])
    }

    /// Files written on Windows: a byte order mark before the first event
    /// and blank lines of "\r", spaces or tabs. The first event used to be
    /// bad input (the mark), and each blank line a dead letter.
    func testAByteOrderMarkAndBlankLinesAreNotEvents() {
        let event = #"{"user_id":"u1","item_id":"a","action":"click","ts":1732600000000}"#
        var bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array((event + "\r\n\r\n  \t\n" + event + "\r\n").utf8)
        var read = EventLines(bytes, nowMs: now)
        XCTAssertEqual(read.rejected, [])
        XCTAssertEqual(read.events.count, 2)
        var numbers: [Int] = []
        bytes.withUnsafeBytes { all in EventLines.forEachLine(in: all) { number, _ in numbers.append(number) } }
        XCTAssertEqual(numbers, [1, 4], "line numbers count the skipped lines")
        // A mark anywhere else is part of a line (and bad input there).
        bytes = Array((event + "\n").utf8) + [0xEF, 0xBB, 0xBF] + Array(event.utf8)
        read = EventLines(bytes, nowMs: now)
        XCTAssertEqual(read.events.count, 1)
        XCTAssertEqual(read.rejected.map(\.line), [2])
    }
}
