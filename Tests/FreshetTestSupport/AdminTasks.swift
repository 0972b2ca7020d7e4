import Foundation

/// A client for a freshet instance's `/tasks` admin endpoint: integration tests
/// wait on what the instance says it owns and how far it got, instead of
/// reading its log or sleeping.
///
/// The types decode the documented JSON keys (docs/OPERATIONS.md) with their
/// own definitions, not the runtime's, so they check the wire contract.
package enum AdminTasks {
    package struct Task: Decodable, Equatable, CustomStringConvertible {
        package var task: String
        package var stage: String
        package var topic: String
        package var partition: Int32
        package var epoch: Int64?
        package var position: Int64?
        package var endOffset: Int64?
        package var lag: Int64?
        package var finished: Bool
        package var watermarkMs: Int64?
        package var recordsProcessed: Int
        package var lastCheckpointOffset: Int64?
        package var lastCheckpointMs: Int64?
        package var rebuilding: Bool
        package var paused: Bool
        package var joinerEntries: Int?
        package var joinerPeakEntries: Int?

        enum CodingKeys: String, CodingKey {
            case task, stage, topic, partition, epoch, position, endOffset = "end_offset", lag, finished
            case watermarkMs = "watermark_ms", recordsProcessed = "records_processed"
            case lastCheckpointOffset = "last_checkpoint_offset", lastCheckpointMs = "last_checkpoint_ms", rebuilding
            case paused, joinerEntries = "joiner_entries", joinerPeakEntries = "joiner_peak_entries"
        }

        package var description: String {
            func text(_ v: Int64?) -> String { v.map(String.init) ?? "-" }
            return "\(task) epoch \(text(epoch)) at \(text(position))/\(text(endOffset)) read \(recordsProcessed)"
                + " ckpt \(text(lastCheckpointOffset))\(finished ? " finished" : "")\(rebuilding ? " rebuilding" : "")"
        }
    }

    package struct Snapshot: Decodable, Equatable, CustomStringConvertible {
        package var group: String
        package var memberId: String
        package var generation: Int32?
        package var memberOfGroup: Bool
        package var ready: Bool
        package var notReadyReasons: [String]
        package var bounded: Bool
        package var publishedMs: Int64
        package var tasks: [Task]

        enum CodingKeys: String, CodingKey {
            case group, memberId = "member_id", generation, memberOfGroup = "member_of_group", ready
            case notReadyReasons = "not_ready_reasons", bounded, publishedMs = "published_ms", tasks
        }

        /// The owned tasks' ids (`items-3`).
        package var owned: Set<String> { Set(tasks.map(\.task)) }

        /// Epoch of each owned task.
        package var epochs: [String: Int64] {
            Dictionary(tasks.compactMap { t in t.epoch.map { (t.task, $0) } }, uniquingKeysWith: { $1 })
        }

        package func task(_ id: String) -> Task? { tasks.first { $0.task == id } }

        package var description: String {
            "member \(memberOfGroup ? "yes" : "no") generation \(generation.map(String.init) ?? "-") "
                + "ready \(ready ? "yes" : "no: \(notReadyReasons.joined(separator: "; "))") "
                + "published \(publishedMs) tasks \(tasks.count):\n"
                + tasks.map { "  \($0)" }.joined(separator: "\n")
        }
    }

    /// GET `/tasks` once. Throws when nothing answers, the status is not 200, or the body does not decode.
    package static func fetch(port: Int, timeout: TimeInterval = 5) throws -> Snapshot {
        let response = try HTTPGet.get(port: port, path: "/tasks", timeout: timeout)
        guard response.status == 200 else {
            throw TestFailure("/tasks on port \(port) answered \(response.status): \(response.body.prefix(300))")
        }
        do {
            return try JSONDecoder().decode(Snapshot.self, from: Data(response.body.utf8))
        } catch {
            throw TestFailure("/tasks on port \(port) is not the documented JSON: \(error)\n\(response.body.prefix(500))")
        }
    }

    /// Polls `/tasks` on `port` until `condition` holds for a fetched snapshot,
    /// and returns that snapshot. Fetch errors (the instance is starting, or
    /// busy) are retried until the deadline.
    ///
    /// - Throws: `TestFailure` after `timeout` seconds, naming `what` and
    ///   showing the last snapshot (or the last fetch error).
    @discardableResult
    package static func waitUntil(port: Int, timeout: TimeInterval = 60, every interval: TimeInterval = 0.2,
                                 _ what: String, _ condition: (Snapshot) -> Bool) throws -> Snapshot {
        try waitUntil(ports: [port], timeout: timeout, every: interval, what) { condition($0[0]) }[0]
    }

    /// As `waitUntil(port:)`, over several instances at once: `condition` gets
    /// one snapshot per port, in the order of `ports`, all fetched in the same round.
    @discardableResult
    package static func waitUntil(ports: [Int], timeout: TimeInterval = 60, every interval: TimeInterval = 0.2,
                                 _ what: String, _ condition: ([Snapshot]) -> Bool) throws -> [Snapshot] {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [Int: Snapshot] = [:]
        var lastError: [Int: String] = [:]
        while true {
            var round: [Snapshot] = []
            for port in ports {
                do {
                    let snapshot = try fetch(port: port)
                    last[port] = snapshot
                    lastError[port] = nil
                    round.append(snapshot)
                } catch {
                    lastError[port] = "\(error)"
                }
            }
            if round.count == ports.count && condition(round) { return round }
            if Date() > deadline { break }
            usleep(UInt32(interval * 1_000_000))
        }
        let report = ports.map { port in
            "port \(port): " + (lastError[port].map { "last fetch failed: \($0)\n" } ?? "")
                + (last[port].map { "last snapshot: \($0)" } ?? "no snapshot")
        }.joined(separator: "\n")
        throw TestFailure("timed out after \(Int(timeout)) s waiting for \(what)\n\(report)")
    }

    /// True when the snapshots' owned tasks are disjoint and together exactly `all`:
    /// every task has one owner (the group has settled).
    package static func partition(_ snapshots: [Snapshot], covers all: Set<String>) -> Bool {
        var seen: Set<String> = []
        for snapshot in snapshots {
            guard snapshot.memberOfGroup, seen.isDisjoint(with: snapshot.owned) else { return false }
            seen.formUnion(snapshot.owned)
        }
        return seen == all
    }

    /// True when every source task (`interactions-*`, `impressions-*`) across
    /// `snapshots` has read at least up to `ends[task]` (records produced to its
    /// partition), and every task in `ends` is owned by one of them.
    package static func caughtUp(_ snapshots: [Snapshot], to ends: [String: Int64]) -> Bool {
        var positions: [String: Int64] = [:]
        for snapshot in snapshots {
            for task in snapshot.tasks { positions[task.task] = task.position ?? 0 }
        }
        return ends.allSatisfy { task, end in (positions[task] ?? -1) >= end }
    }
}
