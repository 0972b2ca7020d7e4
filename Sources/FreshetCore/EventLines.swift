/// Input events from JSON Lines (one event a line, as `freshet produce --file`
/// sends them), read by the processor's own decoder so that a replay accepts
/// and rejects exactly what `freshet run` does.
///
/// Each non-empty line is routed as `freshet produce --file` routes it
/// (`EventDecoder.routing`: an object with an `items_shown` member is an
/// impression, anything else an interaction) and decoded by `EventDecoder`
/// with the same rules as the processor. A file line has no Kafka message
/// timestamp, so `ts` must be present (the processor falls back to the
/// message's timestamp; a replay has none). Empty lines are skipped, as
/// `freshet produce --file` skips them.
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
            var lineNumber = 0
            var start = 0
            while start <= all.count {
                lineNumber += 1
                var end = start
                while end < all.count && all[end] != UInt8(ascii: "\n") { end += 1 }
                defer { start = end + 1 }
                guard end > start else { continue }
                let line = UnsafeRawBufferPointer(rebasing: all[start..<end])
                do throws(BadInput) {
                    events.append(try Self.decode(line, decoder: decoder, nowMs: nowMs))
                } catch {
                    rejected.append(Rejected(line: lineNumber, problem: error))
                }
            }
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
