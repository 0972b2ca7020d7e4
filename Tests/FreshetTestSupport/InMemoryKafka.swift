import FreshetKafka
import FreshetRuntime

/// An in-memory Kafka for the engine driver: partitioned append-only logs,
/// one consumer group per group id with committed offsets, and group
/// membership driven by the test (`assign`, `move`, `lose`) instead of
/// heartbeats and session timeouts, so a rebalance happens exactly between
/// two polls the test chooses.
///
/// Rebalance callbacks run inside the member's next `poll`, as librdkafka
/// runs them; `move` follows the cooperative protocol (the old owner's revoke
/// callback runs, and only then is the partition assigned to the new owner),
/// `lose` does not (the new owner gets the partition at once, the old one
/// hears it is lost at its next poll and may write as a zombie until then).
/// Produced records are visible at once (acknowledged on `produce`), so a
/// producer flush never waits.
///
/// Commits from a member that no longer owns a partition are refused, as a
/// broker refuses a commit from a stale generation.
///
/// Single-threaded: the test thread drives every processor's loop (the
/// engine's Redis writer threads never touch Kafka).
package final class InMemoryKafka {
    /// The producers' wall clock, ms: stamps records produced without a
    /// timestamp (nil: they keep none).
    package var clock: (@Sendable () -> Int64)?
    package struct Record {
        package var key: [UInt8]?
        package var value: [UInt8]?
        package var timestampMs: Int64?
        package var headers: [(String, [UInt8])]
    }

    /// The logs, by topic, then partition.
    private(set) var logs: [String: [[Record]]] = [:]
    /// The first offset still retained, per partition (0 unless a test deletes a prefix).
    package var logStart: [TopicPartition: Int64] = [:]
    /// Committed next offsets, by group id.
    package private(set) var committed: [String: [TopicPartition: Int64]] = [:]
    /// False: a frozen broker, as the producers see it (records still land,
    /// but `flush` times out, so no produced record counts as acknowledged).
    package var acknowledgesProduced = true
    /// `flush` calls of every producer (each is a wait of up to its timeout on a real broker).
    package var flushCalls = 0
    /// The consumers made so far, in order (closed ones included).
    package private(set) var consumers: [InMemoryConsumer] = []
    /// At most this many records per partition in one poll, so partitions interleave.
    package var recordsPerPartitionPerPoll = 200
    /// The same bound for the partitions of one topic (a consumer that lags on it).
    package var recordsPerPollOfTopic: [String: Int] = [:]
    /// When a member leaves the group (`close`), its partitions go to the
    /// remaining members (round robin, in member order), as the group
    /// coordinator's rebalance would give them.
    package var rebalanceOnLeave = true

    package init() {}

    // MARK: - Topics

    package func createTopic(_ name: String, partitions: Int32) {
        guard logs[name] == nil else { return }
        logs[name] = Array(repeating: [], count: Int(partitions))
    }

    package func partitionCount(_ topic: String) -> Int? { logs[topic]?.count }

    /// Appends a record; returns its offset. A nil partition hashes the key
    /// as the real producer does (no key: partition 0).
    @discardableResult
    package func append(topic: String, partition: Int32?, key: [UInt8]?, value: [UInt8]?, timestampMs: Int64? = nil,
                        headers: [(String, [UInt8])] = []) throws(KafkaError) -> Int64 {
        guard let count = logs[topic]?.count else {
            throw KafkaError(code: 3, message: "unknown topic \(topic)", context: "produce to \(topic)")
        }
        let p = Int(partition ?? key.map { KafkaProducer.partition(forKey: $0, partitionCount: Int32(count)) } ?? 0)
        guard p >= 0 && p < count else {
            throw KafkaError(code: 3, message: "unknown partition \(p) of \(topic)", context: "produce to \(topic)")
        }
        logs[topic]![p].append(Record(key: key, value: value, timestampMs: timestampMs, headers: headers))
        return Int64(logs[topic]![p].count - 1)
    }

    package func records(_ tp: TopicPartition) -> [Record] { logs[tp.topic]?[Int(tp.partition)] ?? [] }

    package func endOffset(_ tp: TopicPartition) -> Int64 { Int64(records(tp).count) }

    package func partitions(of topic: String) -> [TopicPartition] {
        (0..<Int32(logs[topic]?.count ?? 0)).map { TopicPartition(topic: topic, partition: $0) }
    }

    func consumedRecord(_ tp: TopicPartition, offset: Int64, topicIndex: Int) -> ConsumedRecord {
        let record = records(tp)[Int(offset)]
        return ConsumedRecord(topicIndex: topicIndex, topic: tp.topic, partition: tp.partition, offset: offset,
                              key: record.key, value: record.value ?? [], timestampMs: record.timestampMs,
                              headers: record.headers.map { KafkaHeader(name: $0.0, value: $0.1) },
                              valueIsNull: record.value == nil)
    }

    // MARK: - The group

    func join(_ consumer: InMemoryConsumer) { consumers.append(consumer) }

    func commit(group: String, _ offsets: [TopicPartition: Int64]) {
        for (tp, offset) in offsets { committed[group, default: [:]][tp] = offset }
    }

    /// The member of `group` that owns (or is about to own) `tp`.
    package func owner(of tp: TopicPartition, group: String) -> InMemoryConsumer? {
        consumers.first { $0.groupId == group && !$0.isClosed && $0.owns(tp) }
    }

    /// Assigns unowned partitions to a member (its assign callback runs at
    /// its next poll); to the other members when it has left meanwhile.
    package func assign(_ partitions: [TopicPartition], to member: InMemoryConsumer) {
        guard !member.isClosed else { return left(member, releasing: partitions) }
        member.enqueue(.assign(partitions))
    }

    /// Moves partitions cooperatively: `from`'s revoke callback runs at its
    /// next poll (flush, checkpoint, commit), and only then are they queued
    /// for `to`'s assign callback.
    package func move(_ partitions: [TopicPartition], from: InMemoryConsumer, to: InMemoryConsumer) {
        from.enqueue(.revoke(partitions, handOffTo: to))
    }

    /// `from` lost the partitions (its session timed out): `to` gets them at
    /// its next poll; `from` hears they are lost at its poll after
    /// `noticeAfterPolls` more polls (records it had fetched are still
    /// delivered meanwhile, so it processes and writes as a zombie).
    package func lose(_ partitions: [TopicPartition], from: InMemoryConsumer, reassignTo to: InMemoryConsumer?,
                      noticeAfterPolls: Int = 0) {
        from.disown(partitions)
        from.enqueue(.lost(partitions, afterPolls: noticeAfterPolls))
        to?.enqueue(.assign(partitions))
    }

    /// A member left: hand its partitions to the remaining members.
    func left(_ member: InMemoryConsumer, releasing partitions: [TopicPartition]) {
        guard rebalanceOnLeave, !partitions.isEmpty else { return }
        let others = consumers.filter { $0.groupId == member.groupId && !$0.isClosed && $0 !== member }
        guard !others.isEmpty else { return }
        var shares = Array(repeating: [TopicPartition](), count: others.count)
        for (index, tp) in partitions.sorted().enumerated() { shares[index % others.count].append(tp) }
        for (other, share) in zip(others, shares) where !share.isEmpty { assign(share, to: other) }
    }

    /// A member vanished without leaving the group (a crash): after the
    /// session timeout the broker gives its partitions to `to` (nil: to
    /// nobody yet). Returns the partitions it held.
    @discardableResult
    package func crashed(_ member: InMemoryConsumer, reassignTo to: InMemoryConsumer?) -> [TopicPartition] {
        let owned = member.ownedPartitions
        member.markCrashed()
        if let to, !owned.isEmpty { assign(owned, to: to) }
        return owned
    }
}

/// One member of a consumer group over `InMemoryKafka` (the engine's consumer).
package final class InMemoryConsumer: EngineConsumer {
    enum Event {
        case assign([TopicPartition])
        case revoke([TopicPartition], handOffTo: InMemoryConsumer?)
        case lost([TopicPartition], afterPolls: Int)
    }

    let kafka: InMemoryKafka
    package let groupId: String
    package let memberId: String
    let topics: [String]
    let rebalance: any EngineRebalanceHandler
    private var pending: [Event] = []
    /// Assigned partitions and where the next fetch reads.
    private var positions: [TopicPartition: Int64] = [:]
    /// The partitions this member owns in the group's view (set before its
    /// callback runs: a lost partition is someone else's at once).
    private var owned: Set<TopicPartition> = []
    private var paused: Set<TopicPartition> = []
    /// The offset at which the end of each partition was last reported.
    private var endReported: [TopicPartition: Int64] = [:]
    /// Called as `close` begins (before the revoke callback), and as it ends
    /// (the partitions released): a fault can strike while the member leaves.
    package var beforeLeaving: (() -> Void)?
    package var afterLeaving: (() -> Void)?
    private var rotation = 0
    package private(set) var isClosed = false
    /// Counts the assignments this member received (the group generation it saw last).
    package private(set) var generationId: Int32?

    init(kafka: InMemoryKafka, groupId: String, topics: [String], rebalance: any EngineRebalanceHandler) {
        self.kafka = kafka
        self.groupId = groupId
        self.topics = topics
        self.rebalance = rebalance
        self.memberId = "\(groupId)-member-\(kafka.consumers.count)"
    }

    func enqueue(_ event: Event) {
        switch event {
        case .assign(let partitions): owned.formUnion(partitions)
        case .revoke, .lost: break
        }
        pending.append(event)
    }

    func owns(_ tp: TopicPartition) -> Bool { owned.contains(tp) }
    func disown(_ partitions: [TopicPartition]) { owned.subtract(partitions) }
    func markCrashed() {
        isClosed = true
        owned.removeAll()
        pending.removeAll()
    }

    /// Partitions assigned (callback run) and not revoked, sorted.
    package var assignment: [TopicPartition] { positions.keys.sorted() }
    /// Partitions the group gives this member (including assignments not yet delivered).
    package var ownedPartitions: [TopicPartition] { owned.sorted() }
    /// True while rebalance callbacks wait for this member's next poll.
    package var hasPendingRebalance: Bool { !pending.isEmpty }

    // MARK: - EngineConsumer

    /// As librdkafka's consumer: rebalance callbacks first, then each record
    /// handed to `each` as a view valid during the call.
    package func poll(maxRecords: Int, timeoutMs: Int32,
                      each: (ConsumedRecordView) -> Void) throws(KafkaError) -> ConsumerPollSummary {
        try poll(maxRecords: maxRecords, timeoutMs: timeoutMs, lookahead: 0, ahead: { _ in }, each: each)
    }

    /// As librdkafka's look-ahead poll: each record is shown to `ahead`
    /// `lookahead` records before `each` gets it (rebalance callbacks run
    /// first, before any record is shown, so none is held across one).
    package func poll(maxRecords: Int, timeoutMs: Int32, lookahead: Int,
                      ahead: (ConsumedRecordView) -> Void,
                      each: (ConsumedRecordView) -> Void) throws(KafkaError) -> ConsumerPollSummary {
        let batch = try poll(maxRecords: maxRecords, timeoutMs: timeoutMs)
        var summary = ConsumerPollSummary()
        summary.records = batch.records.count
        summary.endOfPartition = batch.endOfPartition
        summary.errors = batch.errors
        let records = batch.records
        let view = { (k: Int, body: (ConsumedRecordView) -> Void) in
            let record = records[k]
            record.value.withUnsafeBytes { value in
                func hand(_ key: UnsafeRawBufferPointer?) {
                    body(ConsumedRecordView(topicIndex: record.topicIndex, partition: record.partition, offset: record.offset,
                                            key: key, value: value, valueIsNull: record.valueIsNull,
                                            timestampMs: record.timestampMs))
                }
                if let key = record.key { key.withUnsafeBytes { hand($0) } } else { hand(nil) }
            }
        }
        let distance = max(0, lookahead)
        for k in 0..<min(distance, records.count) { view(k, ahead) }
        for k in records.indices {
            if k + distance < records.count { view(k + distance, ahead) }
            view(k, each)
        }
        return summary
    }

    /// The records of one poll, owned (what `poll(maxRecords:timeoutMs:each:)` hands out as views).
    package func poll(maxRecords: Int, timeoutMs: Int32) throws(KafkaError) -> ConsumerPoll {
        var result = ConsumerPoll()
        guard !isClosed else { return result }
        runRebalanceCallbacks()
        let assigned = positions.keys.filter { !paused.contains($0) }.sorted()
        guard !assigned.isEmpty else { return result }
        rotation = (rotation + 1) % assigned.count
        for index in 0..<assigned.count {
            let tp = assigned[(index + rotation) % assigned.count]
            guard var position = positions[tp], let topicIndex = topics.firstIndex(of: tp.topic) else { continue }
            position = max(position, kafka.logStart[tp] ?? 0)
            let end = kafka.endOffset(tp)
            let bound = kafka.recordsPerPollOfTopic[tp.topic] ?? kafka.recordsPerPartitionPerPoll
            let take = min(Int64(bound), Int64(maxRecords - result.records.count), end - position)
            if take > 0 {
                for offset in position..<(position + take) {
                    result.records.append(kafka.consumedRecord(tp, offset: offset, topicIndex: topicIndex))
                }
                position += take
            }
            positions[tp] = position
            if position == end && endReported[tp] != end {
                endReported[tp] = end
                result.endOfPartition.append(PartitionEndEvent(topicPartition: tp, offset: end))
            }
        }
        return result
    }

    private func runRebalanceCallbacks() {
        while !pending.isEmpty {
            if case .lost(let partitions, let polls) = pending[0], polls > 0 {
                pending[0] = .lost(partitions, afterPolls: polls - 1)
                return
            }
            let event = pending.removeFirst()
            switch event {
            case .assign(let partitions):
                let fresh = partitions.filter { positions[$0] == nil && owned.contains($0) }
                guard !fresh.isEmpty else { continue }
                generationId = (generationId ?? 0) + 1
                let starts = rebalance.assigned(fresh)
                for tp in fresh {
                    positions[tp] = starts[tp] ?? kafka.committed[groupId]?[tp] ?? kafka.logStart[tp] ?? 0
                    endReported[tp] = nil
                }
            case .revoke(let partitions, let next):
                let held = partitions.filter { positions[$0] != nil }
                if !held.isEmpty { rebalance.revoked(held) }
                forget(held)
                owned.subtract(partitions)
                if let next { kafka.assign(held, to: next) }
            case .lost(let partitions, _):
                let held = partitions.filter { positions[$0] != nil }
                if !held.isEmpty { rebalance.lost(held) }
                forget(held)
            }
        }
    }

    private func forget(_ partitions: [TopicPartition]) {
        for tp in partitions {
            positions[tp] = nil
            paused.remove(tp)
            endReported[tp] = nil
        }
    }

    package func commit(_ offsets: [TopicPartition: Int64], synchronous: Bool) throws(KafkaError) {
        let stale = offsets.keys.filter { !owned.contains($0) }
        guard stale.isEmpty, !isClosed else {
            throw KafkaError(code: 22, message: "commit of \(stale.sorted()) refused: not owned by \(memberId) (stale generation)",
                             context: "commit offsets")
        }
        kafka.commit(group: groupId, offsets)
    }

    package func committedOffsets(for partitions: [TopicPartition], timeoutMs: Int32) throws(KafkaError) -> [TopicPartition: Int64] {
        var result: [TopicPartition: Int64] = [:]
        for tp in partitions { result[tp] = kafka.committed[groupId]?[tp] }
        return result
    }

    package func seek(_ partition: TopicPartition, offset: Int64, timeoutMs: Int32) throws(KafkaError) {
        guard positions[partition] != nil else {
            throw KafkaError(code: -190, message: "\(partition) is not assigned", context: "seek")
        }
        positions[partition] = offset
        endReported[partition] = nil
    }

    package func pause(_ partitions: [TopicPartition]) throws(KafkaError) { paused.formUnion(partitions) }

    package func resume(_ partitions: [TopicPartition]) throws(KafkaError) { paused.subtract(partitions) }

    package func cachedHighWatermark(_ partition: TopicPartition) -> Int64? { kafka.endOffset(partition) }

    package func earliestOffset(_ partition: TopicPartition, timeoutMs: Int32) throws(KafkaError) -> Int64 {
        kafka.logStart[partition] ?? 0
    }

    /// Leaves the group: the revoke callback runs for what is still
    /// assigned, then the group gives this member's partitions to the others
    /// (`InMemoryKafka.rebalanceOnLeave`).
    package func close() throws(KafkaError) {
        guard !isClosed else { return }
        beforeLeaving?()
        let held = assignment
        if !held.isEmpty { rebalance.revoked(held) }
        forget(held)
        let released = ownedPartitions
        owned.removeAll()
        pending.removeAll()
        isClosed = true
        kafka.left(self, releasing: released)
        afterLeaving?()
    }
}

/// The engine's producer over `InMemoryKafka`: every record is acknowledged on `produce`.
package final class InMemoryProducer: EngineProducer {
    let kafka: InMemoryKafka
    private var watched: Set<String> = []
    private var highOffsets: [Int32: Int64] = [:]
    /// Records produced by this producer.
    package private(set) var produced = 0

    init(kafka: InMemoryKafka) { self.kafka = kafka }

    package func produce(topic: String, partition: Int32?, key: [UInt8]?, value: [UInt8]?,
                         headers: [(String, [UInt8])], timestampMs: Int64?) throws(KafkaError) {
        let count = Int32(kafka.partitionCount(topic) ?? 1)
        let p = partition ?? key.map { KafkaProducer.partition(forKey: $0, partitionCount: count) } ?? 0
        // As librdkafka: a record without a timestamp gets the producer's clock (CreateTime).
        let stamped = timestampMs ?? kafka.clock?()
        let offset = try kafka.append(topic: topic, partition: p, key: key, value: value, timestampMs: stamped, headers: headers)
        produced += 1
        if watched.contains(topic) { highOffsets[p] = max(highOffsets[p] ?? -1, offset) }
    }

    package func poll(timeoutMs: Int32) -> Int { 0 }

    package func flush(timeoutMs: Int32) throws(KafkaError) {
        kafka.flushCalls += 1
        guard kafka.acknowledgesProduced else {
            throw KafkaError(code: KafkaError.Code.timedOut, message: "\(produced) message(s) still outstanding after \(timeoutMs) ms",
                             context: "flush")
        }
    }

    package func watchDeliveredOffsets(topic: String) { watched.insert(topic) }

    package var deliveredHighOffsets: [Int32: Int64] { highOffsets }
}

/// Topic administration over `InMemoryKafka`.
final class InMemoryAdmin: EngineAdmin {
    let kafka: InMemoryKafka
    init(kafka: InMemoryKafka) { self.kafka = kafka }

    func partitionCount(topic: String, timeoutMs: Int32) throws(KafkaError) -> Int? { kafka.partitionCount(topic) }

    func createTopics(_ topics: [NewTopic], timeoutMs: Int32) throws(KafkaError) {
        for topic in topics { kafka.createTopic(topic.name, partitions: topic.partitions) }
    }
}
