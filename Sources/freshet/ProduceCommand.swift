import ArgumentParser
import Foundation
import FreshetCore
import FreshetKafka
import FreshetRuntime
import FreshetWorkload

struct ProduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Emit seeded synthetic events, or replay a JSONL file, into the source topics.",
        discussion: """
        Synthetic events: users, items with Zipf popularity, the action mix (click 55%, watch 20%, \
        like 10%, share 5%, skip 10%), impressions of 10 items, spread over an event-time span, \
        keyed by user. Replay: one JSON event per line; lines with "items_shown" go to the \
        impressions topic, the rest to interactions.
        """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Topology file (topic names, and sources.partitions for topics created here).")
    var topology = ShippedTopology.path

    @Option(help: "Replay this JSONL file instead of generating events.")
    var file: String?

    @Option(help: "Number of synthetic events.")
    var events = 100_000

    @Option(help: "Distinct users.")
    var users = 10_000

    @Option(help: "Distinct items.")
    var items = 2_000

    @Option(help: "Random seed (same seed, same events).")
    var seed: UInt64 = 1

    @Option(help: "Events per second; 0 sends as fast as possible.")
    var rate = 0

    @Option(help: "Event-time span of the stream, e.g. 2h or 3d.")
    var span = "1h"

    @Option(help: "Event time of the first event, epoch ms (default: now minus the span).")
    var startMs: Int64?

    @Option(help: "Out-of-orderness: events displaced back in time by up to this much, e.g. 2m.")
    var outOfOrder = "0ms"

    @Option(help: "Fraction of events sent late (days behind).")
    var lateFraction = 0.0

    @Option(help: "Fraction of bad events, in turn: invalid UTF-8, malformed JSON, not an object, missing field, wrong type, unknown action, timestamp out of range, invalid field (null values, too deep nesting and oversized records are not generated).")
    var badFraction = 0.0

    @Flag(help: "Key messages randomly instead of by user id.")
    var randomKeys = false

    @Option(help: "Partitions for source topics created here (default: the topology's sources.partitions).")
    var partitions: Int32?

    @Flag(help: "Synthetic users and items drawn from planted clusters (for embedding tests).")
    var planted = false

    func validate() throws {
        guard events >= 0 else { throw ValidationError("--events must be 0 or more") }
        guard users >= 1 else { throw ValidationError("--users must be at least 1") }
        guard items >= 1 else { throw ValidationError("--items must be at least 1") }
        guard rate >= 0 else { throw ValidationError("--rate must be 0 (as fast as possible) or more") }
        for (name, fraction) in [("--late-fraction", lateFraction), ("--bad-fraction", badFraction)] {
            guard fraction >= 0 && fraction <= 1 else { throw ValidationError("\(name) \(fraction): expected a fraction from 0 to 1") }
        }
        if let partitions, !(1...10_000).contains(partitions) {
            throw ValidationError("--partitions \(partitions): expected 1 to 10000 (as sources.partitions)")
        }
    }

    func run() throws {
        warnIfLibrdkafkaIsTooOld()
        let topologyValue = try ShippedTopology.load(ShippedTopology.named(topology)).topology
        // Created exactly as `freshet run` would create them (sources.partitions).
        let partitions = self.partitions ?? Int32(topologyValue.sources.partitions)
        guard let spanMs = DurationParser.milliseconds(span), let jitterMs = DurationParser.milliseconds(outOfOrder) else {
            throw ValidationError("--span and --out-of-order take durations like 500ms, 10s, 5m, 2h, 3d")
        }
        let brokers = connection.resolvedBrokers
        let admin = try KafkaAdmin(config: KafkaConfig(bootstrapServers: brokers))
        try admin.createTopics([NewTopic(name: topologyValue.sources.interactions, partitions: partitions),
                                NewTopic(name: topologyValue.sources.impressions, partitions: partitions)])
        var publisher = try EventPublisher(brokers: brokers, interactionsTopic: topologyValue.sources.interactions,
                                           impressionsTopic: topologyValue.sources.impressions, rate: rate, randomKeys: randomKeys)
        let started = Date()
        publisher.progress = { sent in
            if sent % 200_000 == 0 { FileHandle.standardError.write(Data("freshet produce: \(sent) events\n".utf8)) }
        }
        let sent: Int
        if let file {
            sent = try publisher.publish(try JSONLines(path: file))
        } else if planted {
            let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
            // Planted clusters: users prefer their cluster's items (embedding tests and `freshet eval`).
            let config = PlantedConfig(users: users, items: items, events: events, impressions: true, seed: seed,
                                       startTs: startMs ?? nowMs - spanMs, meanGapMs: max(1, spanMs / Int64(max(events, 1))))
            sent = try publisher.publish(PlantedStream(config).lazy.map { ($0.topic == "impressions", $0.key, $0.json) })
        } else {
            let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
            var config = SyntheticConfig(seed: seed, users: users, items: items, startMs: startMs ?? nowMs - spanMs,
                                         spanMs: spanMs, nowMs: nowMs)
            config.outOfOrderMs = jitterMs
            config.lateFraction = lateFraction
            config.badFraction = badFraction
            sent = try publisher.publish(SyntheticStream(config: config, count: events).lazy.map { ($0.topic == .impressions, $0.key, $0.json) })
        }
        let seconds = Date().timeIntervalSince(started)
        print("produced \(sent) events in \(String(format: "%.1f", seconds)) s (\(Int(Double(sent) / max(seconds, 0.001))) events/s) to \(brokers)")
    }
}

/// Lines of a JSONL file as events, read by the processor's own decoder
/// (`EventDecoder.routing`): an object with an `items_shown` member is an
/// impression, anything else goes to interactions; the key is the `user_id`
/// exactly as the decoder reads it (escapes resolved, the last of duplicate
/// keys). Lines without a readable user id go unkeyed (they are dead-lettered).
/// Blank lines and a byte order mark are skipped (`EventLines.forEachLine`).
struct JSONLines: Sequence {
    let lines: [[UInt8]]

    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(path)")
        }
        var lines: [[UInt8]] = []
        data.withUnsafeBytes { all in EventLines.forEachLine(in: all) { _, line in lines.append(Array(line)) } }
        self.lines = lines
    }

    /// The key is empty (sent as no key) when the line has no readable `user_id`.
    func makeIterator() -> AnyIterator<(isImpression: Bool, key: String, json: [UInt8])> {
        var index = 0
        return AnyIterator {
            guard index < lines.count else { return nil }
            let line = lines[index]
            index += 1
            let routing = EventDecoder.routing(line)
            return (routing?.isImpression ?? false, routing?.userId ?? "", line)
        }
    }
}
