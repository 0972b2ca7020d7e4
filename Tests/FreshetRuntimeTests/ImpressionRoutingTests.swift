import FreshetCore
import FreshetFeatures
import FreshetKafka
@testable import FreshetRuntime
import XCTest

/// A source task routes an impression's shown items with one record per item
/// partition (`ImpressionItemsRecord`) when its output knows the partitions;
/// what reaches each partition must be exactly the item events of the
/// one-record-per-item routing.
final class ImpressionRoutingTests: XCTestCase {
    final class RoutingOutput: TaskOutput {
        let partitions: Int32?
        var maxRepartitionRecordBytes: Int
        var routed: [(key: String, value: [UInt8])] = []
        var deadLetters: [BadInput] = []
        init(partitions: Int32?, max: Int = .max) {
            self.partitions = partitions
            maxRepartitionRecordBytes = max
        }
        func repartition(_ target: RepartitionTarget, key: String, value: [UInt8]) { routed.append((key, value)) }
        func partition(of target: RepartitionTarget, keyBytes: UnsafeRawBufferPointer) -> Int32? {
            partitions.map { KafkaProducer.partition(forKey: keyBytes, partitionCount: $0) }
        }
        /// Records sent with their partition given (not hashed again by the output).
        var sentToGivenPartition = 0
        func repartition(_ target: RepartitionTarget, partition: Int32, keyBytes: UnsafeRawBufferPointer,
                         value: UnsafeRawBufferPointer) {
            XCTAssertEqual(partition, self.partition(of: target, keyBytes: keyBytes), "the partition given is the key's")
            sentToGivenPartition += 1
            repartition(target, key: String(decoding: keyBytes, as: UTF8.self), value: Array(value))
        }
        func broadcast(_ target: RepartitionTarget, value: [UInt8]) {}
        func deadLetter(sourceTopic: String, record: InputRecord, reason: BadInput) { deadLetters.append(reason) }

        /// The item events each partition receives, in order.
        func itemEventsByPartition(count: Int32) throws -> [Int32: [RepartitionRecord]] {
            var out: [Int32: [RepartitionRecord]] = [:]
            for (key, value) in routed {
                let p = KafkaProducer.partition(forKey: Array(key.utf8), partitionCount: count)
                try value.withUnsafeBytes { raw throws in
                    try RepartitionRecord.decodeEach(raw) { record in
                        if case .item(let event, _) = record {
                            XCTAssertEqual(KafkaProducer.partition(forKey: Array(event.itemId.utf8), partitionCount: count), p,
                                           "\(event.itemId) travels in a record keyed for its own partition")
                        }
                        out[p, default: []].append(record)
                    }
                }
            }
            return out
        }
    }

    let shown = (0..<12).map { "item-\($0 * 7_919)" }

    func route(_ json: String, output: RoutingOutput, offset: Int64 = 11) {
        let task = SourceTask(id: TaskId(stage: .impressions, partition: 2), topic: "impressions", decoder: EventDecoder(),
                              outOfOrdernessMs: 5_000, keepsUserFeatures: true)
        task.process(InputRecord(partition: 2, offset: offset, key: nil, value: Array(json.utf8), timestampMs: nil),
                     nowMs: 1_732_700_000_000, output: output)
    }

    var impression: String {
        let items = shown.map { "\"\($0)\"" }.joined(separator: ",")
        let positions = shown.indices.map { String($0 * 2) }.joined(separator: ",")
        return #"{"user_id":"u-1","request_id":"r-9","items_shown":[\#(items)],"positions":[\#(positions)],"ts":1732700000000}"#
    }

    func testGroupsCarryExactlyTheItemEventsOfPerItemRouting() throws {
        for partitions: Int32 in [1, 3, 4, 16] {
            let grouped = RoutingOutput(partitions: partitions)
            let single = RoutingOutput(partitions: nil)
            route(impression, output: grouped)
            route(impression, output: single)
            XCTAssertEqual(single.routed.count, shown.count)
            let used = Set(shown.map { KafkaProducer.partition(forKey: Array($0.utf8), partitionCount: partitions) })
            XCTAssertEqual(grouped.routed.count, used.count, "one record per item partition (\(partitions) partitions)")
            XCTAssertEqual(try grouped.itemEventsByPartition(count: partitions), try single.itemEventsByPartition(count: partitions),
                           "\(partitions) partitions")
            XCTAssertLessThan(grouped.routed.reduce(0) { $0 + $1.value.count }, single.routed.reduce(0) { $0 + $1.value.count })
            XCTAssertEqual(grouped.sentToGivenPartition, grouped.routed.count, "every grouped record's partition came with it")
            XCTAssertEqual(single.sentToGivenPartition, 0)
        }
    }

    func testAGroupTooLargeForAMessageGoesItemByItem() throws {
        // Each single fits in 120 bytes, the group of all twelve does not.
        let grouped = RoutingOutput(partitions: 1, max: 120)
        route(impression, output: grouped)
        XCTAssertTrue(grouped.deadLetters.isEmpty)
        XCTAssertEqual(grouped.routed.count, shown.count)
        XCTAssertEqual(grouped.sentToGivenPartition, shown.count, "item by item, each with its partition")
        XCTAssertEqual(try grouped.itemEventsByPartition(count: 1), try {
            let single = RoutingOutput(partitions: nil)
            route(impression, output: single)
            return try single.itemEventsByPartition(count: 1)
        }())
    }

    func testAnItemTooLargeForAnyMessageIsDeadLetteredAndTheRestRouted() throws {
        let big = String(repeating: "b", count: 300)
        let json = #"{"user_id":"u","items_shown":["a","\#(big)","c","d"],"ts":1732700000000}"#
        let output = RoutingOutput(partitions: 1, max: 200)
        route(json, output: output)
        XCTAssertEqual(output.deadLetters.map(\.reason), [.recordTooLarge])
        let events = try output.itemEventsByPartition(count: 1)[0] ?? []
        let routedItems = events.compactMap { record -> String? in
            if case .item(let event, _) = record { return event.itemId }
            return nil
        }
        XCTAssertEqual(routedItems, ["a", "c", "d"])
    }

    /// Records an item task cannot read (a newer writer's tag, a damaged
    /// group) are skipped and counted for the metric, and the bundle's other
    /// records, grouped ones included, are applied.
    func testUnreadableRecordsInABundleAreCountedAndTheRestApplied() throws {
        let output = RoutingOutput(partitions: 1)
        route(impression, output: output)
        let group = try XCTUnwrap(output.routed.first?.value)
        var damaged = group
        damaged.removeLast() // truncated: the last item's sub-index is missing
        var bundle: [UInt8] = []
        RecordBundle.append(group, to: &bundle)
        RecordBundle.append([RepartitionRecord.formatVersion, 9, 1, 2, 3], to: &bundle) // a tag this release does not know
        RecordBundle.append(damaged, to: &bundle)
        let task = ItemTask(id: TaskId(stage: .items, partition: 0), panes: PaneSpec(), trending: TrendingDecay(),
                            idleTimeoutMs: nil, sources: [.init(topic: 1, partition: 2)], nowMs: 0)
        task.process(InputRecord(partition: 0, offset: 0, key: nil, value: bundle, timestampMs: nil),
                     nowMs: 1_732_700_000_000, output: output)
        let counts = Dictionary(uniqueKeysWithValues: task.gauges.counts.map { ($0.0.rawValue, $0.1) })
        XCTAssertEqual(counts[TaskCount.undecodable.rawValue], 2)
        for item in shown {
            XCTAssertEqual(task.store.windowTotals(of: item, asOf: 1_732_700_000_000)?.impressions, 1,
                           "\(item): the good group applied once")
        }
    }
}
