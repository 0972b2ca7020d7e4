extension Topology {
    /// The settings every instance of a consumer group must share, one
    /// `name=value` line each in a fixed order (names as in the topology
    /// file): the input, routing, event time, windows, trending, the Redis
    /// layout, checkpoints on or off (`checkpoint.interval=on|off`, not its
    /// length), the embeddings' model and the examples,
    /// the Feast rows. Two instances that differ in one of them would write
    /// mixed results without an error (part of the examples missing, two
    /// vector fields, windows of two lengths), so `GroupTopologyRegistry`
    /// compares this text between the live members of a group.
    ///
    /// Left out, because instances may differ in them: the admin server, the
    /// progress line, librdkafka properties, the flush cadence and batch
    /// size, the checkpoint interval's length, the largest message, when a
    /// new source topic would be created with how many partitions, and the
    /// embeddings' publication cadence (`sync_interval`, `publish_interval`,
    /// `final_wait`: each instance's own pace of writing the same vectors).
    package var groupSettings: String {
        func ms(_ value: Int64) -> String { DurationParser.describe(value) }
        var lines = [
            "sources.interactions=\(sources.interactions)",
            "sources.impressions=\(sources.impressions)",
            "sources.keyed_by_user=\(sources.keyedByUser)",
            "repartition.partitions=\(repartitionPartitions)",
            "dead_letter_topic=\(deadLetterTopic)",
            "event_time.out_of_orderness=\(ms(eventTime.outOfOrdernessMs))",
            "event_time.idle_timeout=\(ms(eventTime.idleTimeoutMs))",
            "event_time.max_drift=\(alignmentMaxDriftMs.map(ms) ?? "off")",
            "event_time.max_future_skew=\(ms(eventTime.maxFutureSkewMs))",
            "event_time.min_timestamp=\(eventTime.minTimestampMs)",
            "windows.pane=\(ms(windows.paneMs))",
            "windows.length=\(ms(windows.lengthMs))",
            "trending.half_life=\(ms(trending.halfLifeMs))",
            "trending.top_k=\(trending.topK)",
            "redis.key_prefix=\(redis.keyPrefix)",
            "checkpoint.interval=\(checkpointIntervalMs > 0 ? "on" : "off")",
            "embeddings.enabled=\(embeddings.enabled)",
        ]
        if embeddings.enabled {
            lines += [
                "embeddings.dimension=\(embeddings.dimension)",
                "embeddings.history=\(embeddings.history)",
                "embeddings.refresh_every=\(embeddings.refreshEvery)",
                "embeddings.final_iterations=\(embeddings.finalIterations)",
                "embeddings.item_admit_after=\(embeddings.itemAdmitAfter)",
                "embeddings.ttl=\(ms(embeddings.ttlMs))",
                "embeddings.seed=\(embeddings.seed)",
                "embeddings.examples=\(embeddings.examples)",
            ]
            if embeddings.examples {
                lines += [
                    "embeddings.examples_topic=\(embeddings.examplesTopic)",
                    "embeddings.join_window=\(ms(embeddings.joinWindowMs))",
                ]
            }
        }
        lines.append("feast.enabled=\(feast.enabled)")
        if feast.enabled {
            func view(_ name: String, _ v: Feast.View) -> String {
                let features = v.features.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
                return "feast.\(name)_view=\(v.name)/\(v.entity)/\(features)"
            }
            lines += ["feast.project=\(feast.project)", "feast.freshet_hashes=\(feast.freshetHashes)",
                      view("user", feast.user), view("item", feast.item)]
        }
        return lines.joined(separator: "\n")
    }

    /// The lines of two `groupSettings` texts that differ, as
    /// "name: <mine> here, <theirs> there" (a name only one side has shows
    /// "(not set)" on the other), in the order of `mine`, then `theirs`.
    package static func groupSettingDifferences(mine: String, theirs: String) -> [String] {
        func parse(_ text: String) -> [(name: String, value: String)] {
            text.split(separator: "\n").map { line in
                let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            }
        }
        let ours = parse(mine), others = parse(theirs)
        let otherValues = Dictionary(others.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        let ourNames = Set(ours.map(\.name))
        var differences: [String] = []
        for (name, value) in ours where otherValues[name] != value {
            differences.append("\(name): \(value) here, \(otherValues[name] ?? "(not set)") there")
        }
        for (name, value) in others where !ourNames.contains(name) {
            differences.append("\(name): (not set) here, \(value) there")
        }
        return differences
    }
}

/// A setting the group's checkpointed state depends on, with what a start
/// under this value means where the group's record holds another.
package struct StateSetting: Sendable, Equatable {
    package enum Change: Sendable, Equatable {
        /// The state would be read wrongly: the start is refused.
        case refused
        /// Nothing reads the state the change leaves behind.
        case allowed
        /// Allowed, with this warning.
        case warned(String)
    }

    package let name: String
    package let value: String
    package let change: Change

    package init(_ name: String, _ value: String, change: Change = .refused) {
        self.name = name
        self.value = value
        self.change = change
    }
}

extension Topology {
    /// The settings the group's checkpointed state is only valid under, by
    /// name (as in the topology file), each with what changing it to this
    /// topology's value means (`StateSetting.Change`):
    /// - `sources.interactions`, `sources.impressions` (refused): a source
    ///   task's checkpoint holds an offset of its topic; on another topic it
    ///   skips that many records of each partition.
    /// - `windows.pane` (refused): the item windows are kept as pane numbers;
    ///   under another pane length they name other hours, and the windows read empty.
    /// - `trending.half_life` (refused): the trending scores are kept as sums
    ///   scaled by it (log₂), which cannot be rescaled without the events.
    /// - `embeddings.examples` (on only with embeddings on): the counts stage
    ///   counts users' positives only while it is on, so turning it on again
    ///   after a run without it is refused (the examples' `interaction_count`
    ///   would miss that run's positives); turning it off is allowed.
    /// - `embeddings.enabled`: turning it on for a group with history warns
    ///   (vectors only from then on); turning it off is allowed.
    /// `sources.keyed_by_user` is checked against the checkpoints themselves
    /// (`checkUserStateLayout`).
    package var stateSettings: [StateSetting] {
        let examples = embeddings.enabled && embeddings.examples
        return [
            StateSetting("sources.interactions", sources.interactions),
            StateSetting("sources.impressions", sources.impressions),
            StateSetting("windows.pane", DurationParser.describe(windows.paneMs)),
            StateSetting("trending.half_life", DurationParser.describe(trending.halfLifeMs)),
            StateSetting("embeddings.enabled", "\(embeddings.enabled)",
                         change: embeddings.enabled ? .warned("embeddings turned on for a group that ran without them: vectors come from this run's events on (items and users seen only before have none); replay the topics in a new group (or key prefix) for vectors of the whole history") : .allowed),
            StateSetting("embeddings.examples", "\(examples)", change: examples ? .refused : .allowed),
        ]
    }
}
