import FreshetCore
import FreshetWorkload
import XCTest

/// The generators' one JSON writer (`EventJSON`) against the processor's
/// decoder: what a generator says an event is, the decoder reads back.
final class EventJSONTests: XCTestCase {
    func testPlantedLinesDecodeToThePlantedEvents() {
        let world = PlantedPreferences(PlantedConfig(users: 40, items: 25, clusters: 3, events: 200, impressions: true, seed: 5))
        let events = world.inputEvents()
        XCTAssertEqual(events.count, 400, "an impression before each interaction")
        let read = EventLines(Array(world.jsonLines().utf8), nowMs: world.config.startTs)
        XCTAssertEqual(read.rejected, [])
        XCTAssertEqual(read.events, events)
        XCTAssertEqual(PlantedStream(world).map(\.topic), events.map(\.topic))
    }

    func testTasteLinesDecodeToTheTasteEvents() {
        var config = TasteStreamConfig()
        config.interactions = 500
        let events = TasteStream.events(config)
        let text = events.map(TasteStream.jsonLine).joined(separator: "\n")
        let read = EventLines(Array(text.utf8), nowMs: events.last?.ts ?? 0)
        XCTAssertEqual(read.rejected, [])
        XCTAssertEqual(read.events, events.map { .interaction($0) })
    }

    func testLayoutOmitsAbsentFieldsAndWritesIntegerIds() {
        let interaction = Interaction(userId: "7", itemId: "42", action: .skip, ts: 1_732_600_000_000)
        XCTAssertEqual(String(decoding: EventJSON.interaction(interaction, integerIds: true), as: UTF8.self),
                       #"{"user_id":7,"item_id":42,"action":"skip","ts":1732600000000}"#)
        let impression = Impression(userId: "u", itemsShown: ["a", "b"], ts: 5)
        XCTAssertEqual(String(decoding: EventJSON.bytes(.impression(impression)), as: UTF8.self),
                       #"{"user_id":"u","items_shown":["a","b"],"ts":5}"#)
    }
}
