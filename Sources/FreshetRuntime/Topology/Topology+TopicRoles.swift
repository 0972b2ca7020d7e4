extension Topology {
    /// Every topic the processor reads or writes, by the role it plays (the
    /// key a topology file names it by, or the internal topic's purpose).
    /// Internal topics are listed when `group` is given (their names derive
    /// from it); the examples topic when the examples are on.
    package func topicRoles(group: String?) -> [(role: String, topic: String)] {
        var roles: [(String, String)] = [
            ("sources.interactions", sources.interactions),
            ("sources.impressions", sources.impressions),
            ("dead_letter_topic", deadLetterTopic),
        ]
        if embeddings.enabled && embeddings.examples { roles.append(("embeddings.examples_topic", embeddings.examplesTopic)) }
        if let group {
            roles.append(("the item stage's repartition topic", Self.itemRepartitionTopic(group: group)))
            roles.append(("the user stage's repartition topic", Self.userRepartitionTopic(group: group)))
            roles.append(("the counts stage's repartition topic", Self.countsRepartitionTopic(group: group)))
        }
        return roles
    }

    /// Refuses two roles on one topic. A dead-letter topic that is also a
    /// source would read its own letters back and dead-letter them again
    /// without end (one bad record became thousands in seconds); a topic
    /// both sources name would be read as interactions and as impressions;
    /// an output on an input feeds the processor its own records.
    /// - Throws: `TopologyError` naming both roles and the topic.
    package func checkDistinctTopics(group: String?) throws(TopologyError) {
        var seen: [String: String] = [:]
        for (role, topic) in topicRoles(group: group) {
            if let first = seen[topic] {
                throw TopologyError(path: role.contains(" ") ? "" : role,
                                    message: "'\(topic)' is also \(first.contains(" ") ? first : "`\(first)`"); every topic Freshet reads or writes must have one role (a dead-letter topic that is also a source would read its own letters back without end)")
            }
            seen[topic] = role
        }
    }
}
