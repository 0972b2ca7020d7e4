/// Input events from JSON Lines (one event a line, as `freshet produce --file`
/// sends them), read by the processor's own decoder so that a replay accepts
/// and rejects exactly what `freshet run` does.
///
/// Each non-empty line is routed as `freshet produce --file` routes it
/// (`EventDecoder.routing`: an object with an `items_shown` member is an
/// impression, anything else an interaction) and decoded by `EventDecoder`
/// with the same rules as the processor. A file line has no Kafka message
/// timestamp, so `ts` must be present (the processor falls back to the
/// message's timestamp; a replay has none). Empty and blank lines are
/// skipped, and a byte order mark at the start dropped, as `freshet produce
/// --file` does (`forEachLine`).
package struct EventLines: Sendable {
    /// A line the processor would dead-letter: its 1-based number and why.
    package struct Rejected: Sendable, Equatable {
        package var line: Int
        package var problem: BadInput
    }

    /// Accepted events, in file order.
    package private(set) var events: [InputEvent] = []
    /// Rejected lines, in file order.
    package private(set) var rejected: [Rejected] = []

    /// Decodes every line of `bytes`. `nowMs` is the wall clock the decoder's
    /// future-skew bound is measured from (epoch ms).
    package init(_ bytes: [UInt8], decoder: EventDecoder = EventDecoder(), nowMs: EventTimeMs) {
        bytes.withUnsafeBytes { all in
            Self.forEachLine(in: all) { lineNumber, line in
                do throws(BadInput) {
                    events.append(try Self.decode(line, decoder: decoder, nowMs: nowMs))
                } catch {
                    rejected.append(Rejected(line: lineNumber, problem: error))
                }
            }
        }
    }

    /// Calls `body` with each line of JSON Lines text that holds an event,
    /// with its 1-based line number: the text split at "\n", a UTF-8 byte
    /// order mark at its start dropped (Windows editors and PowerShell write
    /// one; it used to make the first event bad input), and lines holding
    /// only JSON whitespace (space, tab, "\r": a CRLF file's blank line)
    /// skipped like empty ones (they used to be sent, and dead-lettered as
    /// empty messages). `freshet produce --file` and `freshet eval` read
    /// files through it.
    package static func forEachLine(in all: UnsafeRawBufferPointer, _ body: (Int, UnsafeRawBufferPointer) -> Void) {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        var start = all.count >= 3 && all[0] == bom[0] && all[1] == bom[1] && all[2] == bom[2] ? 3 : 0
        var lineNumber = 0
        while start <= all.count {
            lineNumber += 1
            var end = start
            while end < all.count && all[end] != UInt8(ascii: "\n") { end += 1 }
            defer { start = end + 1 }
            let line = UnsafeRawBufferPointer(rebasing: all[start..<end])
            guard line.contains(where: { !isJSONWhitespace($0) }) else { continue }
            body(lineNumber, line)
        }
    }

    /// One line, routed and decoded as the processor would.
    package static func decode(_ line: UnsafeRawBufferPointer, decoder: EventDecoder,
                              nowMs: EventTimeMs) throws(BadInput) -> InputEvent {
        if EventDecoder.routing(line)?.isImpression == true {
            return .impression(try decoder.decodeImpression(line, messageTimestampMs: nil, nowMs: nowMs))
        }
        return .interaction(try decoder.decodeInteraction(line, messageTimestampMs: nil, nowMs: nowMs))
    }
}
