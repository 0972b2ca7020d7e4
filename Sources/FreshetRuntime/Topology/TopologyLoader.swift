import Foundation
import Yams

/// A topology file that cannot be used, with the offending key path.
package struct TopologyError: Error, Sendable, CustomStringConvertible {
    package var path: String
    package var message: String
    package var description: String { path.isEmpty ? "topology: \(message)" : "topology: \(path): \(message)" }
}

/// Reads and validates topology YAML. Unknown keys and bad values are refused
/// with the key path, so a typo never silently falls back to a default.
package enum TopologyLoader {
    package static func load(path: String) throws(TopologyError) -> Topology {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TopologyError(path: "", message: "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(yaml: text)
    }

    package static func parse(yaml: String) throws(TopologyError) -> Topology {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw TopologyError(path: "", message: "not valid YAML: \(error)")
        }
        var topology = Topology()
        guard let root else { return topology }
        let top = try Section(root, path: "")
        try top.only(["sources", "repartition", "dead_letter_topic", "output", "event_time", "windows", "trending",
                      "redis", "checkpoint", "progress", "admin", "kafka", "embeddings", "feast"])
        if let s = try top.section("sources") {
            try s.only(["interactions", "impressions", "keyed_by_user", "partitions"])
            topology.sources.interactions = try s.topicName("interactions") ?? topology.sources.interactions
            topology.sources.impressions = try s.topicName("impressions") ?? topology.sources.impressions
            topology.sources.keyedByUser = try s.bool("keyed_by_user") ?? topology.sources.keyedByUser
            topology.sources.partitions = try s.int("partitions", min: 1, max: 10_000) ?? topology.sources.partitions
        }
        if let r = try top.section("repartition") {
            try r.only(["partitions"])
            topology.repartitionPartitions = try r.int("partitions", min: 0, max: 10_000) ?? 0
        }
        topology.deadLetterTopic = try top.topicName("dead_letter_topic") ?? topology.deadLetterTopic
        if let o = try top.section("output") {
            try o.only(["max_message_bytes"])
            topology.output.maxMessageBytes = try o.int("max_message_bytes", min: 10_000, max: 1_000_000_000)
                ?? topology.output.maxMessageBytes
        }
        if let e = try top.section("event_time") {
            try e.only(["out_of_orderness", "idle_timeout", "max_future_skew", "min_timestamp", "max_drift"])
            topology.eventTime.minTimestampMs = try e.timestamp("min_timestamp") ?? topology.eventTime.minTimestampMs
            topology.eventTime.outOfOrdernessMs = try e.duration("out_of_orderness") ?? topology.eventTime.outOfOrdernessMs
            topology.eventTime.idleTimeoutMs = try e.duration("idle_timeout", min: 1) ?? topology.eventTime.idleTimeoutMs
            topology.eventTime.maxFutureSkewMs = try e.duration("max_future_skew") ?? topology.eventTime.maxFutureSkewMs
            topology.eventTime.maxDriftMs = try e.durationOrOff("max_drift") ?? topology.eventTime.maxDriftMs
        }
        if let w = try top.section("windows") {
            try w.only(["pane", "length"])
            topology.windows.paneMs = try w.duration("pane", min: 1) ?? topology.windows.paneMs
            topology.windows.lengthMs = try w.duration("length", min: 1) ?? topology.windows.lengthMs
            guard topology.windows.lengthMs % topology.windows.paneMs == 0 else {
                throw TopologyError(path: "windows.length", message: "must be a whole number of panes (pane \(DurationParser.describe(topology.windows.paneMs)))")
            }
        }
        if let t = try top.section("trending") {
            try t.only(["half_life", "top_k"])
            topology.trending.halfLifeMs = try t.duration("half_life", min: 1) ?? topology.trending.halfLifeMs
            topology.trending.topK = try t.int("top_k", min: 1, max: 1_000_000) ?? topology.trending.topK
        }
        if let r = try top.section("redis") {
            try r.only(["key_prefix", "flush_interval", "flush_max_keys", "allow_eviction"])
            topology.redis.keyPrefix = try r.string("key_prefix") ?? ""
            topology.redis.allowEviction = try r.bool("allow_eviction") ?? topology.redis.allowEviction
            topology.redis.flushIntervalMs = try r.duration("flush_interval", min: 1) ?? topology.redis.flushIntervalMs
            topology.redis.flushMaxKeys = try r.int("flush_max_keys", min: 1, max: 1_000_000) ?? topology.redis.flushMaxKeys
        }
        if let c = try top.section("checkpoint") {
            try c.only(["interval"])
            topology.checkpointIntervalMs = try c.duration("interval") ?? topology.checkpointIntervalMs
            // Keyed state (recent items, windows, the join, the counts stage)
            // lives only in checkpoints: without them a restarted or moved
            // task starts empty and overwrites its keys in Redis with what it
            // sees after that. `freshet bench e2e` still measures the mode
            // (its topology is built in code).
            guard topology.checkpointIntervalMs > 0 else {
                throw TopologyError(path: "checkpoint.interval", message: "must be above 0: keyed state (recent items, item windows, the examples' join) lives only in checkpoints, so without them a restart or rebalance would lose it and overwrite the features in Redis with partial values")
            }
        }
        if let p = try top.section("progress") {
            try p.only(["interval"])
            topology.progressIntervalMs = try p.duration("interval") ?? topology.progressIntervalMs
        }
        if let a = try top.section("admin") {
            try a.only(["host", "port", "allow_non_loopback"])
            topology.admin.host = try a.string("host") ?? topology.admin.host
            topology.admin.port = try a.int("port", min: -1, max: 65_535) ?? topology.admin.port
            topology.admin.allowNonLoopback = try a.bool("allow_non_loopback") ?? false
        }
        if let e = try top.section("embeddings") {
            try e.only(["enabled", "dimension", "loss", "negatives", "join_window", "sync_interval",
                        "user_admit_after", "item_admit_after", "ttl", "examples_topic", "seed",
                        "history", "refresh_every", "final_iterations", "examples", "publish_interval", "final_wait"])
            var m = topology.embeddings
            m.enabled = try e.bool("enabled") ?? m.enabled
            m.dimension = try e.int("dimension", min: 2, max: 4096) ?? m.dimension
            if let loss = try e.string("loss") {
                guard loss == "bpr" || loss == "logistic" else {
                    throw TopologyError(path: "embeddings.loss", message: "expected bpr or logistic, got '\(loss)'")
                }
                m.loss = loss
            }
            m.negatives = try e.int("negatives", min: 0, max: 1_000) ?? m.negatives
            m.joinWindowMs = try e.duration("join_window", min: 1) ?? m.joinWindowMs
            m.syncIntervalMs = try e.duration("sync_interval", min: 1) ?? m.syncIntervalMs
            m.publishIntervalMs = try e.duration("publish_interval", min: 0) ?? m.publishIntervalMs
            m.finalWaitMs = try e.duration("final_wait", min: 0) ?? m.finalWaitMs
            m.userAdmitAfter = try e.int("user_admit_after", min: 1, max: 1_000_000) ?? m.userAdmitAfter
            m.itemAdmitAfter = try e.int("item_admit_after", min: 1, max: 1_000_000) ?? m.itemAdmitAfter
            m.ttlMs = try e.duration("ttl", min: 1) ?? m.ttlMs
            m.examplesTopic = try e.topicName("examples_topic") ?? m.examplesTopic
            m.seed = UInt64(try e.int("seed", min: 0, max: Int.max) ?? Int(m.seed))
            m.history = try e.int("history", min: 1, max: 50) ?? m.history
            if let examples = try e.bool("examples") {
                if examples && !m.enabled {
                    throw TopologyError(path: "embeddings.examples", message: "true needs embeddings.enabled: true (the examples come from the embeddings' join: nothing would be written)")
                }
                m.examples = examples
            }
            m.refreshEvery = try e.int("refresh_every", min: 1, max: Int.max) ?? m.refreshEvery
            m.finalIterations = try e.int("final_iterations", min: 1, max: 1_000) ?? m.finalIterations
            topology.embeddings = m
        }
        if let f = try top.section("feast") {
            topology.feast = try parseFeast(f)
        }
        if let k = try top.section("kafka") {
            topology.kafka = try k.stringMap()
        }
        try topology.checkDistinctTopics(group: nil)
        return topology
    }
}

extension TopologyLoader {
    fileprivate static func parseFeast(_ f: Section) throws(TopologyError) -> Topology.Feast {
        try f.only(["enabled", "project", "freshet_hashes", "user_view", "item_view"])
        var feast = Topology.Feast()
        feast.enabled = try f.bool("enabled") ?? feast.enabled
        if let project = try f.string("project") {
            guard !project.isEmpty else { throw TopologyError(path: "feast.project", message: "must not be empty") }
            feast.project = project
        }
        feast.freshetHashes = try f.bool("freshet_hashes") ?? feast.freshetHashes
        if !feast.freshetHashes && !feast.enabled {
            throw TopologyError(path: "feast.freshet_hashes", message: "false needs feast.enabled: true (nothing would be written)")
        }
        if let v = try f.section("user_view") {
            feast.user = try parseFeastView(v, defaults: feast.user, allowed: Topology.Feast.userFeatures)
        }
        if let v = try f.section("item_view") {
            feast.item = try parseFeastView(v, defaults: feast.item, allowed: Topology.Feast.itemFeatures)
        }
        return feast
    }

    fileprivate static func parseFeastView(_ v: Section, defaults: Topology.Feast.View,
                                           allowed: [String]) throws(TopologyError) -> Topology.Feast.View {
        try v.only(["name", "entity", "features"])
        var view = defaults
        for (key, path) in [("name", \Topology.Feast.View.name), ("entity", \Topology.Feast.View.entity)] {
            if let value = try v.string(key) {
                guard !value.isEmpty else { throw TopologyError(path: "\(v.path).\(key)", message: "must not be empty") }
                view[keyPath: path] = value
            }
        }
        if let features = try v.section("features") {
            try features.only(Set(allowed))
            let map = try features.stringMap()
            for (freshet, feastName) in map where feastName.isEmpty {
                throw TopologyError(path: "\(features.path).\(freshet)", message: "empty Feast feature name (leave the line out instead)")
            }
            view.features = map
        }
        return view
    }
}

/// A YAML mapping with its key path, for precise error messages.
fileprivate struct Section {
    let pairs: [(String, Node)]
    let path: String

    init(_ node: Node, path: String) throws(TopologyError) {
        guard case .mapping(let mapping) = node else {
            throw TopologyError(path: path, message: "expected a mapping of keys to values")
        }
        var pairs: [(String, Node)] = []
        var seen: Set<String> = []
        for (key, value) in mapping {
            guard let name = key.string else {
                throw TopologyError(path: path, message: "keys must be strings")
            }
            // YAML forbids duplicate keys; a silent first-or-last-wins would hide a typo.
            guard seen.insert(name).inserted else {
                throw TopologyError(path: path.isEmpty ? name : "\(path).\(name)", message: "duplicate key")
            }
            pairs.append((name, value))
        }
        self.pairs = pairs
        self.path = path
    }

    private func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func only(_ allowed: Set<String>) throws(TopologyError) {
        for (key, _) in pairs where !allowed.contains(key) {
            throw TopologyError(path: child(key), message: "unknown key (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    private func value(_ key: String) -> Node? {
        guard let node = pairs.first(where: { $0.0 == key })?.1 else { return nil }
        // `key:` or `key: null` means "use the default"; a quoted empty
        // string ("") is a value (refused where a name must not be empty),
        // though YAML's null resolution would read it as null.
        if node.null != nil, !Self.isQuoted(node) { return nil }

        return node
    }

    private static func isQuoted(_ node: Node) -> Bool {
        guard let style = node.scalar?.style else { return false }
        return style == .singleQuoted || style == .doubleQuoted
    }

    func section(_ key: String) throws(TopologyError) -> Section? {
        guard let node = value(key) else { return nil }
        return try Section(node, path: child(key))
    }

    func string(_ key: String) throws(TopologyError) -> String? {
        guard let node = value(key) else { return nil }
        guard case .scalar(let scalar) = node else {
            throw TopologyError(path: child(key), message: "expected a string")
        }
        return scalar.string
    }

    func topicName(_ key: String) throws(TopologyError) -> String? {
        guard let name = try string(key) else { return nil }
        let legal = name.unicodeScalars.allSatisfy { c in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-"
        }
        guard !name.isEmpty, name.count <= 249, legal else {
            throw TopologyError(path: child(key), message: "'\(name)' is not a legal Kafka topic name (letters, digits, '.', '_', '-', at most 249)")
        }
        return name
    }

    func bool(_ key: String) throws(TopologyError) -> Bool? {
        guard let text = try string(key) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw TopologyError(path: child(key), message: "expected true or false, got '\(text)'")
        }
    }

    func int(_ key: String, min: Int, max: Int) throws(TopologyError) -> Int? {
        guard let text = try string(key) else { return nil }
        guard let value = Int(text) else {
            throw TopologyError(path: child(key), message: "expected an integer, got '\(text)'")
        }
        guard value >= min, value <= max else {
            throw TopologyError(path: child(key), message: "\(value) is out of range \(min)...\(max)")
        }
        return value
    }

    /// A point in time: a UTC date `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ`, or epoch milliseconds.
    func timestamp(_ key: String) throws(TopologyError) -> Int64? {
        guard let text = try string(key) else { return nil }
        if let ms = Int64(text) { return ms }
        if let ms = UTCDate.epochMilliseconds(text) { return ms }
        throw TopologyError(path: child(key), message: "expected a UTC date like 1998-01-01 or 1998-01-01T00:00:00Z, or epoch milliseconds, got '\(text)'")
    }

    func duration(_ key: String, min: Int64 = 0) throws(TopologyError) -> Int64? {
        guard let text = try string(key) else { return nil }
        guard let ms = DurationParser.milliseconds(text) else {
            throw TopologyError(path: child(key), message: "expected a duration like 250ms, 5s, 10m, 1h or 7d, got '\(text)'")
        }
        guard ms >= min else {
            throw TopologyError(path: child(key), message: "must be at least \(DurationParser.describe(min))")
        }
        return ms
    }

    /// A duration, or `off` / `false` / `0` (returned as 0).
    func durationOrOff(_ key: String) throws(TopologyError) -> Int64? {
        guard let text = try string(key) else { return nil }
        if ["off", "false", "no"].contains(text.lowercased()) { return 0 }
        return try duration(key)
    }

    func stringMap() throws(TopologyError) -> [String: String] {
        var result: [String: String] = [:]
        for (key, node) in pairs {
            guard case .scalar(let scalar) = node else {
                throw TopologyError(path: child(key), message: "expected a plain value, not a list or mapping")
            }
            result[key] = scalar.string
        }
        return result
    }
}
