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
        let pipeline = RedisPipeline([.hset(keys.stateSettings, topology.stateSettings.map { ($0.name, Array($0.value.utf8)) })])
        do {
            let replies = try controlExecute(pipeline)
            stateSettingsRecorded = replies.first?.errorMessage == nil
        } catch {
            logger.debug("recording the state settings failed (retried at the next checkpoint): \(error)")
        }
    }
}

/// What a start's `Topology.stateSettings` mean against the ones recorded
/// by the group's earlier runs: each setting whose recorded value differs
/// counts as its `StateSetting.Change` says; one with no recorded value passes.
struct StateSettingsVerdict: Equatable {
    /// "name: <recorded> in the group's checkpoints, <current> now", per refused change.
    var refused: [String] = []
    var warnings: [String] = []

    init(recorded: [String: String], current: [StateSetting]) {
        for setting in current {
            guard let before = recorded[setting.name], before != setting.value else { continue }
            switch setting.change {
            case .refused: refused.append("\(setting.name): \(before) in the group's checkpoints, \(setting.value) now")
            case .allowed: continue
            case .warned(let warning): warnings.append(warning)
            }
        }
    }
}
