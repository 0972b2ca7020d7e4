import FreshetRedis

extension StreamProcessor {
    /// Refuses a start whose settings differ from those the group's
    /// checkpointed state was written under (`Topology.stateSettings`,
    /// recorded in `keys.stateSettings` by each run at its first
    /// checkpoint). A breaker's runs with a changed source topic, pane length
    /// or trending half-life, or with the examples turned on again, each
    /// exited 0 with features or examples wrong: 18,869 positives skipped on
    /// the new topics, every item window empty, old and new trending scores
    /// on two scales, 7,795 examples with too low an `interaction_count`. A
    /// group with no record (new, never checkpointed, or from before the
    /// record existed) passes.
    /// - Throws: `ProcessorError.configuration` naming each changed setting
    ///   with both values, and the ways out.
    func checkStateSettings() throws {
        let recorded = try hashGetAll(keys.stateSettings).mapValues { String(decoding: $0, as: UTF8.self) }
        let verdict = StateSettingsVerdict(recorded: recorded, current: topology.stateSettings)
        for warning in verdict.warnings { logger.warning("\(warning)", metadata: ["group": "\(options.group)"]) }
        if !verdict.refused.isEmpty {
            throw ProcessorError.configuration("the group \(options.group)'s checkpointed state was written under other settings (\(verdict.refused.joined(separator: "; "))): this run would read it wrongly (offsets of other topics, panes of another length, trending scores on another scale, examples' counts missing positives) and write wrong features without an error. Run with the recorded settings again, or use a new group (or redis.key_prefix) and replay the topics from the start to change them")
        }
    }

    /// Records this run's `Topology.stateSettings` as those of the group's
    /// checkpointed state: once a run, after its first checkpoint landed
    /// (a run that checkpointed nothing leaves an earlier record, or none).
    /// A Redis error only leaves it for the next checkpoint.
    func recordStateSettings() {
        var pipeline = RedisPipeline()
        pipeline.add(RedisCommand(arguments: [Array("HSET".utf8), Array(keys.stateSettings.utf8)]
            + topology.stateSettings.flatMap { [Array($0.name.utf8), Array($0.value.utf8)] }))
        do {
            let replies = try controlExecute(pipeline)
            stateSettingsRecorded = replies.first?.errorMessage == nil
        } catch {
            logger.debug("recording the state settings failed (retried at the next checkpoint): \(error)")
        }
    }
}

/// What a start's `Topology.stateSettings` mean against the ones recorded
/// by the group's earlier runs: each changed setting is refused, except
/// turning the examples off (nothing reads the counts stage's state then)
/// and turning the embeddings on (a warning: vectors from then on only).
/// A setting with no recorded value passes.
struct StateSettingsVerdict: Equatable {
    /// "name: <recorded> in the group's checkpoints, <current> now", per refused change.
    var refused: [String] = []
    var warnings: [String] = []

    init(recorded: [String: String], current: [(name: String, value: String)]) {
        for (name, value) in current {
            guard let before = recorded[name], before != value else { continue }
            switch (name, value) {
            case ("embeddings.enabled", "true"):
                warnings.append("embeddings turned on for a group that ran without them: vectors come from this run's events on (items and users seen only before have none); replay the topics in a new group (or key prefix) for vectors of the whole history")
            case ("embeddings.enabled", _), ("embeddings.examples", "false"):
                continue
            default:
                refused.append("\(name): \(before) in the group's checkpoints, \(value) now")
            }
        }
    }
}
