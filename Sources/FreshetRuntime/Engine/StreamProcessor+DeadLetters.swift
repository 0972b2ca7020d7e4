import FreshetCore
import FreshetKafka
import FreshetRedis

/// Exactly one dead letter per bad record, across crashes.
///
/// A crash replays a source task's input from its checkpoint, so the bad
/// records after the checkpoint are dead-lettered again. Their first letters
/// all lie at or after the dead-letter topic's offsets as they were when the
/// checkpoint was written (the producer was flushed before it: every earlier
/// letter is acknowledged, and later ones are appended after). So after each
/// checkpoint the processor records, per source task, that floor (one small
/// Redis key, `freshet:<group>:dlq:<task>`); a new owner reads the topic from
/// the floor to its end once, at restore, and skips the letters already there
/// for records of its partition at or after the checkpointed offset. The
/// floor comes from delivery reports (no broker round trip per checkpoint).
extension StreamProcessor {
    func deadLetterProgressKey(_ task: TaskId) -> String { keys.deadLetterFloor(task) }

    /// Per dead-letter partition, the offset below which every letter sent so
    /// far lies: the highest delivered + 1, or the end at start-up.
    var deadLetterFloor: [Int32: Int64] {
        var floor = deadLetterStart
        for (partition, offset) in producer.deliveredHighOffsets { floor[partition] = max(floor[partition] ?? 0, offset + 1) }
        return floor
    }

    /// Records the floor for the source tasks just checkpointed. Called after a
    /// checkpoint was acknowledged. A failure only makes a later replay scan
    /// from an older (lower, still correct) floor, so it is logged, not fatal.
    /// A task still skipping letters of a previous owner keeps the older floor
    /// (those letters lie below the new one, and another crash would replay them).
    func recordDeadLetterProgress(tasks: [TaskId]) {
        let floor = deadLetterFloor
        guard !floor.isEmpty else { return }
        let value = Self.encodeFloor(floor, topic: topology.deadLetterTopic)
        var pipeline = RedisPipeline()
        var count = 0
        for id in tasks where id.stage.readsSourceTopic && taskManager.epochs[id] != nil {
            let tp = taskManager.inputs.topicPartition(of: id)
            guard deadLetterFloorWritten[id] != value, sourceTasks[tp]?.deadLettersAlreadySent.isEmpty ?? false else { continue }
            deadLetterFloorWritten[id] = value
            pipeline.add(RedisCommand(arguments: [Array("SET".utf8), Array(deadLetterProgressKey(id).utf8), Array(value.utf8)]))
            count += 1
        }
        guard count > 0 else { return }
        // Best effort, one attempt: a refusing or unreachable Redis must not
        // hold the processing thread in the control connection's back-off (it
        // did, with the first checkpoint's floor write refused under OOM: no
        // record was read until the stop), nor mark the run unready; the
        // feature writes report a refusal themselves.
        do {
            _ = try control.executeOnce(pipeline)
        } catch {
            logger.warning("could not record the dead-letter floor (a replay will scan further back): \(error)")
        }
    }

    /// For the source tasks being assigned, the source offsets (per task) that
    /// already have a dead letter in the topic past the tasks' recorded floors.
    /// One read of the dead-letter topic for the whole assignment, from the
    /// lowest floor to the topic's end (one fetch per partition when nothing
    /// was appended since the floors).
    /// Tasks without a floor get one recorded now (the topic's end as far as
    /// this instance knows), so a crash before their first checkpoint is covered.
    func deadLettersAlreadySent(tasks: [TaskId: String]) throws -> [TaskId: Set<Int64>] {
        guard !tasks.isEmpty else { return [:] }
        let ids = Array(tasks.keys)
        let current = topology.deadLetterTopic
        var get = RedisPipeline()
        for id in ids { get.add(RedisCommand(arguments: [Array("GET".utf8), Array(deadLetterProgressKey(id).utf8)])) }
        let replies = try controlExecute(get)
        let known = deadLetterFloor
        var lowest: [Int32: Int64] = [:]
        var missing: [TaskId] = []
        var foreign: [TaskId] = []
        for (id, reply) in zip(ids, replies) {
            // A key of another type is not a missing floor (which reads the topic from its start).
            guard case .bulk(let bytes) = try reply.checked(context: "GET \(deadLetterProgressKey(id))"), let recorded = Self.decodeFloor(String(decoding: bytes, as: UTF8.self)),
                  !recorded.offsets.isEmpty else {
                missing.append(id)
                continue
            }
            // A floor on another topic (the topology's dead-letter topic was
            // renamed since) says nothing of this one.
            if let topic = recorded.topic, topic != current {
                foreign.append(id)
                continue
            }
            // Read from every recorded floor, even one at or past this
            // instance's own idea of the topic's end: that idea dates from its
            // start-up and its own deliveries, and another owner may have
            // recorded a floor and sent letters after it (a survivor that was
            // already running when the owner crashed, EngineDriverTests).
            for (partition, offset) in recorded.offsets {
                lowest[partition] = min(lowest[partition] ?? .max, offset)
            }
        }
        if !missing.isEmpty || !foreign.isEmpty, !known.isEmpty {
            let value = Array(Self.encodeFloor(known, topic: current).utf8)
            var set = RedisPipeline()
            for id in missing {
                set.add(RedisCommand(arguments: [Array("SET".utf8), Array(deadLetterProgressKey(id).utf8), value, Array("NX".utf8)]))
            }
            for id in foreign {
                set.add(RedisCommand(arguments: [Array("SET".utf8), Array(deadLetterProgressKey(id).utf8), value]))
            }
            _ = try controlExecute(set)
        }
        if !foreign.isEmpty {
            logger.notice("the dead-letter floors of \(foreign.map(\.description).sorted()) name another topic (dead_letter_topic changed): \(current) is read from its start to find letters already sent")
            for partition in known.keys { lowest[partition] = KafkaOffset.beginning }
        }
        guard !lowest.isEmpty else { return [:] }
        let byOrigin = try lettersByOrigin(from: try readableStarts(lowest))
        var result: [TaskId: Set<Int64>] = [:]
        for (id, topic) in tasks {
            if let offsets = byOrigin["\(topic)/\(id.partition)"] { result[id] = offsets }
        }
        return result
    }

    /// `floors` checked against the dead-letter topic as it is now. Every
    /// letter acknowledged lies below the topic's end, so a floor past a
    /// partition's end means the topic lost records since the floor was
    /// recorded (deleted and created again, or truncated): that partition is
    /// read from its start. A partition the topic no longer has holds no
    /// letter. (A read waiting for an end it could not reach stopped every
    /// start of the processor.) Reading more than the floor skips no letter
    /// wrongly: letters are matched by their origin.
    private func readableStarts(_ floors: [Int32: Int64]) throws -> [Int32: Int64] {
        let topic = topology.deadLetterTopic
        let ends = try connections.endOffsets(config: kafkaConfig, topics: [topic])
        var starts: [Int32: Int64] = [:]
        var behind: [String] = []
        for (partition, floor) in floors {
            guard let end = ends[TopicPartition(topic: topic, partition: partition)] else { continue }
            if floor > end {
                behind.append("\(partition): floor \(floor), end \(end)")
                starts[partition] = KafkaOffset.beginning
            } else {
                starts[partition] = floor
            }
        }
        if !behind.isEmpty {
            logger.warning("the dead-letter topic \(topic) ends before the floors recorded on it (\(behind.sorted().joined(separator: "; "))): it was recreated or truncated; reading those partitions from their start")
        }
        return starts
    }

    /// For a source task rebuilt from its input's start after the checkpoint
    /// store lost it (`StreamProcessor+StoreLoss`): the source offsets that
    /// already have a dead letter anywhere in the topic. Its floor key went
    /// with the store, so the whole topic is read (a store loss is rare and
    /// dead letters are few). The floor is recorded as the topic's start
    /// until the replay has passed those letters, so a crash during the
    /// rebuild reads the whole topic again.
    ///
    /// Within one rebuild pass (`withRebuildPass`: the tasks of one assignment,
    /// or of one check after a Redis restart) the topic is read once and the
    /// result shared: nothing is processed, so nothing is dead-lettered, between
    /// the pass's rebuilds, and a whole-store loss rebuilds every task at once.
    func deadLettersSentBeforeRebuild(_ id: TaskId, topic: String) throws -> Set<Int64> {
        guard id.stage.readsSourceTopic else { return [] }
        var partitions = Set(deadLetterFloor.keys)
        if partitions.isEmpty { partitions = [0] }
        var record = RedisPipeline()
        record.add(RedisCommand(arguments: [Array("SET".utf8), Array(deadLetterProgressKey(id).utf8),
                                            Array(Self.encodeFloor(partitions.reduce(into: [:]) { $0[$1] = 0 }, topic: topology.deadLetterTopic).utf8)]))
        _ = try controlExecute(record)
        deadLetterFloorWritten[id] = nil
        let letters: [String: Set<Int64>]
        if let scanned = rebuildPassLetters.scanned {
            letters = scanned
        } else {
            // Letters this instance sent before (another task's, rebuilt later
            // in the pass) must be in the topic when it is read for all of them.
            // Best effort: a broker that does not acknowledge in time leaves
            // them to the read as it finds them, as before.
            _ = try? flushProducer(timeoutMs: 10_000)
            let fromStart = Dictionary(uniqueKeysWithValues: partitions.map { ($0, KafkaOffset.beginning) })
            letters = try lettersByOrigin(from: fromStart)
            if rebuildPassLetters.inPass { rebuildPassLetters.scanned = letters }
        }
        return letters["\(topic)/\(id.partition)"] ?? []
    }

    /// Runs `body` as one rebuild pass: the first `deadLettersSentBeforeRebuild`
    /// in it reads the whole dead-letter topic, the others reuse that read.
    /// Processing thread only; passes do not nest (an inner one joins the outer).
    func withRebuildPass<T>(_ body: () throws -> T) rethrows -> T {
        guard !rebuildPassLetters.inPass else { return try body() }
        rebuildPassLetters = RebuildPassLetters(inPass: true)
        defer { rebuildPassLetters = RebuildPassLetters() }
        return try body()
    }

    /// Reads the dead-letter topic from `starts` (per partition) to its end:
    /// the source offsets that have a letter, by `topic/partition` of origin.
    private func lettersByOrigin(from starts: [Int32: Int64]) throws -> [String: Set<Int64>] {
        let positions = Dictionary(uniqueKeysWithValues: starts.map {
            (TopicPartition(topic: topology.deadLetterTopic, partition: $0.key), $0.value)
        })
        var byOrigin: [String: Set<Int64>] = [:]
        for letter in try connections.readToEnd(config: kafkaConfig, from: positions) {
            func header(_ name: String) -> String? {
                letter.headers.first { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
            }
            guard let topic = header("freshet.source.topic"), let partition = header("freshet.source.partition"),
                  let offset = header("freshet.source.offset").flatMap({ Int64($0) }) else { continue }
            byOrigin["\(topic)/\(partition)", default: []].insert(offset)
        }
        return byOrigin
    }

    /// `<topic>@partition:offset,...`, readable in redis-cli (Kafka topic
    /// names cannot contain `@`).
    static func encodeFloor(_ floor: [Int32: Int64], topic: String) -> String {
        topic + "@" + floor.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
    }

    /// A recorded floor; `topic` is nil in a floor written before it was
    /// part of the value (`partition:offset,...`: taken as the current topic's).
    static func decodeFloor(_ text: String) -> (topic: String?, offsets: [Int32: Int64])? {
        var topic: String?
        var list = Substring(text)
        if let at = text.lastIndex(of: "@") {
            topic = String(text[..<at])
            list = text[text.index(after: at)...]
        }
        var floor: [Int32: Int64] = [:]
        for part in list.split(separator: ",") {
            let pair = part.split(separator: ":")
            guard pair.count == 2, let p = Int32(pair[0]), let o = Int64(pair[1]) else { return nil }
            floor[p] = o
        }
        return (topic, floor)
    }
}

/// The dead-letter topic as read once for the current rebuild pass
/// (`StreamProcessor.withRebuildPass`), by `topic/partition` of origin.
struct RebuildPassLetters {
    var inPass = false
    var scanned: [String: Set<Int64>]?
}
