/// The Redis key layout: the contract readers code against (see README).
///
/// Feature keys are the same on one Redis and on a cluster. The processor's
/// own keys (epochs, checkpoints, dead-letter floors) differ: on a cluster
/// (`hashTagged`) every key of one task carries the hash tag `{<group>:<task>}`,
/// so they share one slot and a task's checkpoint stays one atomic script
/// (docs/OPERATIONS.md, "Redis Cluster").
package struct RedisKeys: Sendable, Equatable {
    package let prefix: String
    package let group: String
    /// True on a Redis Cluster: task keys are hash-tagged by task.
    package let hashTagged: Bool

    package init(prefix: String, group: String, hashTagged: Bool = false) {
        self.prefix = prefix
        self.group = group
        self.hashTagged = hashTagged
    }

    package func user(_ id: String) -> String { "\(prefix)user:\(id)" }
    package func item(_ id: String) -> String { "\(prefix)item:\(id)" }
    /// What `user(_:)` puts before the id (the flush writes the two parts straight into its command).
    package var userPrefix: String { "\(prefix)user:" }
    /// What `item(_:)` puts before the id.
    package var itemPrefix: String { "\(prefix)item:" }
    package var trending: String { "\(prefix)trending" }
    package var trendingMeta: String { "\(prefix)trending:meta" }

    // Internal keys, scoped by consumer group like the repartition topics.
    // One Redis: `freshet:<group>:epoch:<task>`; a cluster: `freshet:{<group>:<task>}:epoch`.
    package func epoch(_ task: TaskId) -> String { taskKey(task, "epoch") }
    package func checkpointState(_ task: TaskId) -> String { taskKey(task, "ckpt", "state") }
    package func checkpointMeta(_ task: TaskId) -> String { taskKey(task, "ckpt", "meta") }
    /// Embedding rows of the task, field = id (kept apart from feature entries so ids never collide).
    package func checkpointEmbeddings(_ task: TaskId) -> String { taskKey(task, "ckpt", "emb") }
    /// Per dead-letter partition, the offset below which the task's letters lie (`StreamProcessor+DeadLetters`).
    package func deadLetterFloor(_ task: TaskId) -> String { taskKey(task, "dlq") }
    /// The refresh leader's published vector set (`SharedVectorSet`): the
    /// pointer hash (`data` nil) or one data hash (`data` = "<epoch>-<version>").
    package func embeddingSet(_ task: TaskId, data: String?) -> String { taskKey(task, "embset", data) }
    /// Item partitions whose final co-occurrence rows are checkpointed (end of a bounded run).
    package var embeddingFinal: String { "\(prefix)freshet:\(group):emb:final" }
    /// Bounded runs: the tasks (`items-<p>`, `interactions-<p>`) whose final
    /// vectors their owner has written (`StreamProcessor.confirmFinalPublication`).
    package var embeddingPublished: String { "\(prefix)freshet:\(group):emb:published" }

    /// The group's live instances and the settings each runs (field = member
    /// id; `GroupTopologyRegistry`).
    package var groupMembers: String { "\(prefix)freshet:\(group):members" }
    /// Hash: the settings the group's checkpointed state was written under
    /// (`Topology.stateSettings`), recorded at each run's first checkpoint.
    package var stateSettings: String { "\(prefix)freshet:\(group):state_settings" }

    /// A cluster slot's fence hash (field = task, value = the highest epoch
    /// of that task that wrote in the slot), tagged so it lives in `slot` (`ClusterFencing`).
    package func slotFence(_ slot: Int) -> String { "\(prefix)freshet:\(group):fence:{\(SlotTags.tag(for: slot))}" }

    /// The hash tag of a task's keys on a cluster: all of them hash to one slot.
    package func taskTag(_ task: TaskId) -> String { "{\(group):\(task)}" }

    /// One Redis keeps the historical names (`freshet:<group>:<kind>:<task>[:<part>]`).
    private func taskKey(_ task: TaskId, _ kind: String, _ part: String? = nil) -> String {
        let suffix = part.map { ":\($0)" } ?? ""
        if hashTagged { return "\(prefix)freshet:\(taskTag(task)):\(kind)\(suffix)" }
        return "\(prefix)freshet:\(group):\(kind):\(task)\(suffix)"
    }
}
