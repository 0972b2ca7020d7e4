import Foundation
import XCTest
@testable import FreshetCore

/// Fuzz tests of the hand-written JSON event decoder (the source tasks' hot
/// path), seeded so a failure reproduces:
/// - generated valid events (random key order, whitespace, escapes, surrogate
///   pairs, integer ids, unknown nested members, duplicate keys) decode to
///   exactly the values they were generated from, through both the byte path
///   (`DecodedEvent`, reused across records) and the `String` decoders;
/// - mutated events (bytes flipped, cut, duplicated, spliced with JSON
///   fragments) never crash, and whatever is accepted is valid JSON (Foundation
///   parses it as an object) with well-formed fields, identical on both paths.
final class DecoderFuzzTests: XCTestCase {
    let decoder = EventDecoder()
    let now: EventTimeMs = 1_732_700_000_000

    // MARK: generated valid events

    struct Expected {
        var user: [UInt8]
        var item: [UInt8]
        var items: [[UInt8]]
        var request: [UInt8]?
        var positions: [Int32]?
        var action: Action
        var dwell: Int64?
        var ts: Int64
    }

    /// A random id: its JSON text and its bytes (ids with escapes, non-ASCII,
    /// surrogate pairs, or an integer).
    func randomId(_ rng: inout SplitMix64) -> (json: String, bytes: [UInt8]) {
        switch rng.nextInt(6) {
        case 0:
            let n = Int64(rng.nextInt(1_000_000)) - (rng.nextInt(4) == 0 ? 500_000 : 0)
            return (String(n), Array(String(n).utf8))
        case 1:
            return (#""u\"q\\\/\n\t""#, Array("u\"q\\/\n\t".utf8))
        case 2:
            return (#""caf\u00e9\ud83d\ude00""#, Array("café😀".utf8))
        case 3:
            let raw = "ü€😀\(rng.nextInt(100))"
            return ("\"\(raw)\"", Array(raw.utf8))
        case 4:
            let long = String(repeating: "x", count: 1 + rng.nextInt(40)) + "\(rng.nextInt(1000))"
            return ("\"\(long)\"", Array(long.utf8))
        default:
            let s = "i\(rng.nextInt(100_000))"
            return ("\"\(s)\"", Array(s.utf8))
        }
    }

    func space(_ rng: inout SplitMix64) -> String { ["", "", " ", "\n", "\t ", "\r\n  "][rng.nextInt(6)] }

    func unknownMember(_ rng: inout SplitMix64) -> String {
        ["\"extra\":{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u0041\"}", "\"n\":-1.5e3", "\"flag\":true",
         "\"list\":[]", "\"o\":{}", "\"s\":\"x\\\\y\""][rng.nextInt(6)]
    }

    /// An event's JSON with members in random order, plus the values it must decode to.
    func generate(_ rng: inout SplitMix64, impression: Bool) -> (String, Expected) {
        let user = randomId(&rng)
        let item = randomId(&rng)
        let action = [Action.click, .watch, .like, .share, .skip][rng.nextInt(5)]
        let ts = now - Int64(rng.nextInt(1_000_000))
        var members: [String] = []
        var expected = Expected(user: user.bytes, item: item.bytes, items: [], request: nil, positions: nil,
                                action: action, dwell: nil, ts: ts)
        // A duplicate key: the first value is overwritten by the last.
        if rng.nextInt(5) == 0 { members.append("\"user_id\":\(randomId(&rng).json)") }
        members.append("\"user_id\":\(user.json)")
        members.append("\"ts\":\(ts)")
        if rng.nextInt(2) == 0 {
            let request = randomId(&rng)
            members.append("\"request_id\":\(request.json)")
            expected.request = request.bytes
        }
        if impression {
            let n = rng.nextInt(12)
            var ids: [String] = []
            for _ in 0..<n {
                let id = randomId(&rng)
                ids.append(id.json)
                expected.items.append(id.bytes)
            }
            members.append("\"items_shown\":[\(ids.joined(separator: ",\(space(&rng))"))]")
            if rng.nextInt(2) == 0 {
                let positions = (0..<n).map { _ in Int32(rng.nextInt(100)) }
                members.append("\"positions\":[\(positions.map(String.init).joined(separator: ","))]")
                expected.positions = positions
            }
        } else {
            members.append("\"item_id\":\(item.json)")
            members.append("\"action\":\"\(action.name)\"")
            if rng.nextInt(2) == 0 {
                let dwell = Int64(rng.nextInt(100_000))
                members.append("\"dwell_ms\":\(dwell)")
                expected.dwell = dwell
            }
        }
        for _ in 0..<rng.nextInt(3) { members.append(unknownMember(&rng)) }
        // Shuffle, keeping a duplicate user_id before the one that counts.
        var order = members
        for k in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(k, rng.nextInt(k + 1)) }
        let lastUser = order.lastIndex { $0.hasPrefix("\"user_id\"") }!
        let winner = "\"user_id\":\(user.json)"
        if order[lastUser] != winner, let w = order.firstIndex(of: winner) { order.swapAt(lastUser, w) }
        let body = order.map { "\(space(&rng))\($0)\(space(&rng))" }.joined(separator: ",")
        return ("\(space(&rng)){\(body)}\(space(&rng))", expected)
    }

    func testGeneratedEventsDecodeToTheirValuesOnBothPaths() throws {
        var rng = SplitMix64(seed: 2026_12_01)
        var event = DecodedEvent() // reused, as a source task does
        for round in 0..<4_000 {
            let impression = round % 3 == 0
            let (json, expected) = generate(&rng, impression: impression)
            let bytes = Array(json.utf8)
            try bytes.withUnsafeBytes { buf in
                if impression {
                    try decoder.decode(impression: buf, messageTimestampMs: nil, nowMs: now, into: &event)
                    XCTAssertEqual(event.kind, .impression, json)
                    XCTAssertEqual(event.itemCount, expected.items.count, json)
                    XCTAssertEqual(event.hasPositions ? Array(event.positions) : nil, expected.positions, json)
                    event.withIds(in: buf) { ids in
                        for k in 0..<expected.items.count { XCTAssertEqual(Array(ids.shownItem(k)), expected.items[k], json) }
                    }
                    let s = try decoder.decodeImpression(buf, messageTimestampMs: nil, nowMs: now)
                    XCTAssertEqual(s.itemsShown.map { Array($0.utf8) }, expected.items, json)
                    XCTAssertEqual(Array(s.userId.utf8), expected.user, json)
                    XCTAssertEqual(s.requestId.map { Array($0.utf8) }, expected.request, json)
                    XCTAssertEqual(s.positions, expected.positions, json)
                    XCTAssertEqual(s.ts, expected.ts, json)
                } else {
                    try decoder.decode(interaction: buf, messageTimestampMs: nil, nowMs: now, into: &event)
                    XCTAssertEqual(event.kind, .interaction, json)
                    XCTAssertEqual(event.action, expected.action, json)
                    XCTAssertEqual(event.dwellMs, expected.dwell, json)
                    event.withIds(in: buf) { ids in XCTAssertEqual(Array(ids.item), expected.item, json) }
                    let s = try decoder.decodeInteraction(buf, messageTimestampMs: nil, nowMs: now)
                    XCTAssertEqual(Array(s.userId.utf8), expected.user, json)
                    XCTAssertEqual(Array(s.itemId.utf8), expected.item, json)
                    XCTAssertEqual(s.requestId.map { Array($0.utf8) }, expected.request, json)
                    XCTAssertEqual(s.action, expected.action, json)
                    XCTAssertEqual(s.dwellMs, expected.dwell, json)
                    XCTAssertEqual(s.ts, expected.ts, json)
                }
                XCTAssertEqual(event.ts, expected.ts, json)
                event.withIds(in: buf) { ids in
                    XCTAssertEqual(Array(ids.user), expected.user, json)
                    XCTAssertEqual(ids.requestId.map { Array($0) }, expected.request, json)
                }
            }
        }
    }

    // MARK: mutated events

    static let fragments: [[UInt8]] = ["\"", "\\", "\\u", "\\ud83d", "{", "}", "[", "]", ",", ":", "null", "1e5", "-",
                                        "\"items_shown\":", "\"user_id\":", "\u{01}", "é", "\\\"", " "].map { Array($0.utf8) }
        + [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]]

    func mutate(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = bytes
        for _ in 0..<(1 + rng.nextInt(3)) {
            guard !b.isEmpty else { break }
            let at = rng.nextInt(b.count)
            switch rng.nextInt(5) {
            case 0: b[at] = UInt8(truncatingIfNeeded: rng.next())
            case 1: b.remove(at: at)
            case 2: b.insert(contentsOf: Self.fragments[rng.nextInt(Self.fragments.count)], at: at)
            case 3: b = Array(b[..<at])
            default:
                let end = min(b.count, at + 1 + rng.nextInt(8))
                b.insert(contentsOf: b[at..<end], at: at)
            }
        }
        return b
    }

    func testMutatedEventsNeverCrashAndAcceptOnlyValidJSONObjects() throws {
        var rng = SplitMix64(seed: 9)
        var event = DecodedEvent()
        var accepted = 0
        for round in 0..<20_000 {
            let impression = round % 3 == 0
            let (json, _) = generate(&rng, impression: impression)
            let bytes = mutate(Array(json.utf8), &rng)
            bytes.withUnsafeBytes { buf in
                let shown = String(decoding: bytes, as: UTF8.self)
                let byteResult: BadInput?
                do throws(BadInput) {
                    if impression {
                        try decoder.decode(impression: buf, messageTimestampMs: nil, nowMs: now, into: &event)
                    } else {
                        try decoder.decode(interaction: buf, messageTimestampMs: nil, nowMs: now, into: &event)
                    }
                    byteResult = nil
                } catch {
                    byteResult = error
                }
                // The String decoders give the same verdict.
                let stringResult: BadInput?
                do throws(BadInput) {
                    if impression { _ = try decoder.decodeImpression(buf, messageTimestampMs: nil, nowMs: now) }
                    else { _ = try decoder.decodeInteraction(buf, messageTimestampMs: nil, nowMs: now) }
                    stringResult = nil
                } catch {
                    stringResult = error
                }
                XCTAssertEqual(byteResult?.reason, stringResult?.reason, shown)
                guard byteResult == nil else { return }
                accepted += 1
                // Accepted: valid UTF-8, a JSON object by Foundation's parser too.
                XCTAssertNil(UTF8Validation.firstInvalidOffset(buf), shown)
                let parsed = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
                XCTAssertTrue(parsed is [String: Any], "accepted but not a JSON object: \(shown)")
                XCTAssertTrue(event.ts >= decoder.minTimestampMs && event.ts <= now + decoder.maxFutureSkewMs, shown)
                if event.hasPositions { XCTAssertEqual(event.positions.count, event.itemCount, shown) }
                event.withIds(in: buf) { ids in
                    XCTAssertFalse(ids.user.isEmpty, shown)
                    XCTAssertNil(UTF8Validation.firstInvalidOffset(ids.user), shown)
                    if impression {
                        for k in 0..<event.itemCount {
                            XCTAssertFalse(ids.shownItem(k).isEmpty, shown)
                            XCTAssertNil(UTF8Validation.firstInvalidOffset(ids.shownItem(k)), shown)
                        }
                    } else {
                        XCTAssertFalse(ids.item.isEmpty, shown)
                        XCTAssertNil(UTF8Validation.firstInvalidOffset(ids.item), shown)
                    }
                }
            }
        }
        // The mutations leave a fair share of events valid (the check above is exercised).
        XCTAssertGreaterThan(accepted, 1_000)
    }
}
