import FreshetRedis

extension StreamProcessor {
    /// Refuses a start whose `sources.keyed_by_user` puts the user features
    /// in other tasks than the group's checkpoints hold them in: keyed by
    /// user, the `interactions` source tasks keep them; otherwise the `users`
    /// tasks, fed from `<group>-users-repartition`. A group that changed the
    /// setting between runs started the new tasks empty, and the run exited
    /// 0 with most users' `interaction_count` and `recent_items_50` rebuilt
    /// from the new input only (a breaker's finding: 5,227 of the users
    /// wrong). A Redis without the other layout's checkpoints passes.
    /// - Throws: `ProcessorError.configuration` naming the setting, the
    ///   checkpoints found and the ways out.
    func checkUserStateLayout() throws {
        let keyedByUser = topology.sources.keyedByUser
        // The tasks that would hold user state under the other setting.
        let others: [TaskId] = keyedByUser
            ? (0..<repartitionPartitions).map { TaskId(stage: .users, partition: $0) }
            : (0..<interactionPartitions).map { TaskId(stage: .interactions, partition: $0) }
        guard !others.isEmpty else { return }
        var pipeline = RedisPipeline()
        for id in others { pipeline.add(RedisCommand("HGET", keys.checkpointMeta(id), "entries")) }
        let replies = try controlExecute(pipeline)
        let holding = try zip(others, replies).filter { id, reply in
            (try reply.checked(context: "HGET \(keys.checkpointMeta(id)) entries").int ?? 0) > 0
        }.map(\.0.description)
        guard !holding.isEmpty else { return }
        let now = keyedByUser ? "true" : "false", before = keyedByUser ? "false" : "true"
        throw ProcessorError.configuration("sources.keyed_by_user is \(now), but the group \(options.group)'s checkpoints hold user features in the tasks of keyed_by_user: \(before) (\(holding.sorted().joined(separator: ", "))): this run's tasks would start without them and write users' features from the new input only. Run with keyed_by_user: \(before) again, or use a new group (or key prefix) and replay the topics from the start to change it")
    }
}
