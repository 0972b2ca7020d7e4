// What `/tasks` shows: the tasks this instance owns, with their progress, and
// the instance's place in the consumer group. Plain values, built on the
// processing thread and read by the admin thread (see `TaskBoard`).
//
// The JSON keys are part of the operations contract (docs/OPERATIONS.md,
// "Task ownership: /tasks"); tests decode them with their own types, so a
// renamed key breaks a test rather than a dashboard.

import Foundation

/// One owned task and how far it got.
package struct TaskSnapshot: Sendable, Equatable, Encodable {
    /// `items-3`: the task id as in metrics, logs and Redis key names.
    package var task: String
    /// `interactions`, `impressions`, `items` or `users`.
    package var stage: String
    /// The input topic the task reads.
    package var topic: String
    package var partition: Int32
    /// The fencing epoch this instance took when it was assigned the task.
    package var epoch: Int64?
    /// The next input offset the task will read (nil: nothing read or restored yet).
    package var position: Int64?
    /// The partition's high watermark as of the consumer's last fetch (nil: not known yet).
    package var endOffset: Int64?
    /// `endOffset - position` (never negative; nil when the end offset is unknown).
    package var lag: Int64?
    /// Bounded runs: the task reached its end (a source task read up to its
    /// end offset; a repartition-fed task heard every source's final marker).
    /// Always false in an unbounded run.
    package var finished: Bool
    /// The task's event-time watermark, epoch ms (nil before any event).
    package var watermarkMs: Int64?
    /// Records of the task's input partition read by this instance since it took the task.
    package var recordsProcessed: Int
    /// The input offset saved by the task's latest acknowledged checkpoint in
    /// this ownership (nil: none yet, or checkpoints are off).
    package var lastCheckpointOffset: Int64?
    /// When that checkpoint was taken, epoch ms.
    package var lastCheckpointMs: Int64?
    /// Being rebuilt by replay after the checkpoint store lost it.
    package var rebuilding: Bool
    /// Source tasks: watermark alignment has paused the partition (it runs
    /// more than `event_time.max_drift` ahead of the group's slowest).
    package var paused: Bool
    /// The tasks that join the examples (counts tasks; item tasks when the
    /// input is not keyed by user): entries in the join's state now (pending
    /// impressions and tombstones); nil otherwise.
    package var joinerEntries: Int?
    /// The most `joinerEntries` reached since the task was created here (nil when that is nil).
    package var joinerPeakEntries: Int?

    package init(task: String, stage: String, topic: String, partition: Int32, epoch: Int64? = nil,
                position: Int64? = nil, endOffset: Int64? = nil, lag: Int64? = nil, finished: Bool = false,
                watermarkMs: Int64? = nil, recordsProcessed: Int = 0, lastCheckpointOffset: Int64? = nil,
                lastCheckpointMs: Int64? = nil, rebuilding: Bool = false, paused: Bool = false,
                joinerEntries: Int? = nil, joinerPeakEntries: Int? = nil) {
        self.task = task
        self.stage = stage
        self.topic = topic
        self.partition = partition
        self.epoch = epoch
        self.position = position
        self.endOffset = endOffset
        self.lag = lag
        self.finished = finished
        self.watermarkMs = watermarkMs
        self.recordsProcessed = recordsProcessed
        self.lastCheckpointOffset = lastCheckpointOffset
        self.lastCheckpointMs = lastCheckpointMs
        self.rebuilding = rebuilding
        self.paused = paused
        self.joinerEntries = joinerEntries
        self.joinerPeakEntries = joinerPeakEntries
    }

    enum CodingKeys: String, CodingKey {
        case task, stage, topic, partition, epoch, position
        case endOffset = "end_offset", lag, finished
        case watermarkMs = "watermark_ms", recordsProcessed = "records_processed"
        case lastCheckpointOffset = "last_checkpoint_offset", lastCheckpointMs = "last_checkpoint_ms"
        case rebuilding, paused, joinerEntries = "joiner_entries", joinerPeakEntries = "joiner_peak_entries"
    }

    // Unknown values are written as `null`, not left out: every key is always present.
    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(task, forKey: .task)
        try c.encode(stage, forKey: .stage)
        try c.encode(topic, forKey: .topic)
        try c.encode(partition, forKey: .partition)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(position, forKey: .position)
        try c.encode(endOffset, forKey: .endOffset)
        try c.encode(lag, forKey: .lag)
        try c.encode(finished, forKey: .finished)
        try c.encode(watermarkMs, forKey: .watermarkMs)
        try c.encode(recordsProcessed, forKey: .recordsProcessed)
        try c.encode(lastCheckpointOffset, forKey: .lastCheckpointOffset)
        try c.encode(lastCheckpointMs, forKey: .lastCheckpointMs)
        try c.encode(rebuilding, forKey: .rebuilding)
        try c.encode(paused, forKey: .paused)
        try c.encode(joinerEntries, forKey: .joinerEntries)
        try c.encode(joinerPeakEntries, forKey: .joinerPeakEntries)
    }
}

/// The instance as the processing thread last published it.
package struct OwnershipSnapshot: Sendable, Equatable {
    /// The consumer group id (`--group`).
    package var group: String
    /// This member's id in the group ("" before the first join).
    package var memberId: String
    /// The group generation this member last joined (nil: unknown, or the
    /// loaded librdkafka does not expose it).
    package var generation: Int32?
    /// A member of the group now: set by each assignment, cleared when the
    /// partitions were lost (session timeout) until the instance rejoins.
    package var memberOfGroup: Bool
    /// `--stop-at-end`.
    package var bounded: Bool
    /// Wall clock of this publication, epoch ms. The processing thread
    /// publishes at every rebalance and about once a second after a batch; an
    /// old value means it is blocked (e.g. waiting for Redis or the broker).
    package var publishedMs: Int64
    /// Owned tasks, sorted by stage then partition.
    package var tasks: [TaskSnapshot]

    package init(group: String = "", memberId: String = "", generation: Int32? = nil, memberOfGroup: Bool = false,
                bounded: Bool = false, publishedMs: Int64 = 0, tasks: [TaskSnapshot] = []) {
        self.group = group
        self.memberId = memberId
        self.generation = generation
        self.memberOfGroup = memberOfGroup
        self.bounded = bounded
        self.publishedMs = publishedMs
        self.tasks = tasks
    }
}

/// The `/tasks` document: the published snapshot plus readiness, evaluated when asked.
struct TasksDocument: Encodable {
    var snapshot: OwnershipSnapshot
    var readiness: Readiness

    enum CodingKeys: String, CodingKey {
        case group, memberId = "member_id", generation, memberOfGroup = "member_of_group"
        case ready, notReadyReasons = "not_ready_reasons", bounded, publishedMs = "published_ms", tasks
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(snapshot.group, forKey: .group)
        try c.encode(snapshot.memberId, forKey: .memberId)
        try c.encode(snapshot.generation, forKey: .generation)
        try c.encode(snapshot.memberOfGroup, forKey: .memberOfGroup)
        try c.encode(readiness.isReady, forKey: .ready)
        try c.encode(readiness.reasons, forKey: .notReadyReasons)
        try c.encode(snapshot.bounded, forKey: .bounded)
        try c.encode(snapshot.publishedMs, forKey: .publishedMs)
        try c.encode(snapshot.tasks, forKey: .tasks)
    }
}

extension OwnershipSnapshot {
    /// The `/tasks` body: one JSON object (keys sorted), `ready` and
    /// `not_ready_reasons` from `readiness`. Shape in docs/OPERATIONS.md.
    package func json(readiness: Readiness) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings, integers and booleans cannot fail; the
        // fallback keeps the endpoint answering JSON if it ever did.
        guard let data = try? encoder.encode(TasksDocument(snapshot: self, readiness: readiness)) else {
            return "{\"error\":\"cannot encode the task snapshot\"}\n"
        }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
