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
    func deadLetterProgressKey(_ task: TaskId) -> String { "\(keys.prefix)freshet:\(options.group):dlq:\(task)" }

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
        let value = Self.encodeFloor(floor)
        var pipeline = RedisPipeline()
        var count = 0
        for id in tasks where (id.stage == .interactions || id.stage == .impressions) && epochs[id] != nil {
            let tp = TopicPartition(topic: id.stage == .interactions ? topology.sources.interactions : topology.sources.impressions,
                                    partition: id.partition)
            guard deadLetterFloorWritten[id] != value, sourceTasks[tp]?.deadLettersAlreadySent.isEmpty ?? false else { continue }
            deadLetterFloorWritten[id] = value
            pipeline.add(RedisCommand(arguments: [Array("SET".utf8), Array(deadLetterProgressKey(id).utf8), Array(value.utf8)]))
            count += 1
        }
        guard count > 0 else { return }
        do {
            _ = try control.execute(pipeline, onRetry: { _, _ in })
        } catch {
            logger.warning("could not record the dead-letter floor (a replay will scan further back): \(error)")
        }
    }

    /// Offsets of `task`'s records at or after `offset` that already have a dead
    /// letter (sent before a crash): the replay must not send them again.
    func deadLettersAlreadySent(task: TaskId, topic: String, after offset: Int64) throws -> Set<Int64> {
        var pipeline = RedisPipeline()
        pipeline.add(RedisCommand(arguments: [Array("GET".utf8), Array(deadLetterProgressKey(task).utf8)]))
        let replies = try control.execute(pipeline, onRetry: { _, _ in })
        guard let reply = replies.first, case .bulk(let bytes) = reply,
              let floor = Self.decodeFloor(String(decoding: bytes, as: UTF8.self)), !floor.isEmpty else {
            // First owner (or no letters yet): record a floor now, so that a
            // crash before the first checkpoint is covered too.
            let current = deadLetterFloor
            if !current.isEmpty {
                var set = RedisPipeline()
                set.add(RedisCommand(arguments: [Array("SET".utf8), Array(deadLetterProgressKey(task).utf8),
                                                 Array(Self.encodeFloor(current).utf8), Array("NX".utf8)]))
                _ = try control.execute(set, onRetry: { _, _ in })
            }
            return []
        }
        // Nothing was appended since the floor (as far as this instance knows):
        // no letter to look for, no read.
        let known = deadLetterFloor
        if floor.allSatisfy({ $0.value >= (known[$0.key] ?? .max) }) { return [] }
        let starts = Dictionary(uniqueKeysWithValues: floor.map {
            (TopicPartition(topic: topology.deadLetterTopic, partition: $0.key), $0.value)
        })
        let letters = try KafkaConsumer.readToEnd(config: kafkaConfig, from: starts)
        let partitionText = Array(String(task.partition).utf8), topicText = Array(topic.utf8)
        var sent: Set<Int64> = []
        for letter in letters {
            func header(_ name: String) -> [UInt8]? { letter.headers.first { $0.name == name }?.value }
            guard header("freshet.source.topic") == topicText, header("freshet.source.partition") == partitionText,
                  let text = header("freshet.source.offset"), let source = Int64(String(decoding: text, as: UTF8.self)),
                  source >= offset else { continue }
            sent.insert(source)
        }
        return sent
    }

    /// `partition:offset,...`, readable in redis-cli.
    static func encodeFloor(_ floor: [Int32: Int64]) -> String {
        floor.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
    }

    static func decodeFloor(_ text: String) -> [Int32: Int64]? {
        var floor: [Int32: Int64] = [:]
        for part in text.split(separator: ",") {
            let pair = part.split(separator: ":")
            guard pair.count == 2, let p = Int32(pair[0]), let o = Int64(pair[1]) else { return nil }
            floor[p] = o
        }
        return floor
    }
}
