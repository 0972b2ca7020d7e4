/// Keeps every live instance of a consumer group on one topology: each
/// instance registers its `Topology.groupSettings` in the hash
/// `freshet:<group>:members` (field = member id, value = `MemberEntry`),
/// refreshes its entry every `heartbeatMs` and removes it when it stops.
///
/// - At start, an instance refuses to run (`ProcessorError.configuration`,
///   naming every setting that differs) while another member's entry with
///   other settings has not expired: instances that differ in
///   `embeddings.examples`, `dimension` or the windows would otherwise write
///   mixed results without an error. A member killed without removing its
///   entry blocks a start with new settings until its entry expires
///   (`ttlMs` after its last heartbeat); the error says when.
/// - Two instances that started at the same moment with different settings
///   both pass that check; at its next heartbeat the one registered later
///   (ties: the greater member id) stops with the same error, the earlier
///   one warns and goes on.
///
/// Kafka Streams' newer group protocol (KIP-1071) has the broker refuse
/// members whose topology differs in the same way; librdkafka's consumer
/// groups carry no such metadata, so Freshet keeps it in Redis, next to the
/// group's other keys. Times are the processor's clock (wall ms).
struct GroupTopologyRegistry {
    /// How often an instance refreshes its entry.
    static let heartbeatMs: Int64 = 5_000
    /// How long an entry lives without a heartbeat.
    static let ttlMs: Int64 = 30_000

    /// One member's entry: `1`, registration time, expiry, then the settings
    /// (lines of `Topology.groupSettings`), separated by newlines.
    struct MemberEntry: Equatable {
        var registeredMs: Int64
        var expiresMs: Int64
        var settings: String

        var encoded: String { "1\n\(registeredMs)\n\(expiresMs)\n\(settings)" }

        /// nil for a value this version cannot read (then it is ignored, not trusted).
        init?(decoding text: String) {
            let parts = text.split(separator: "\n", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4, parts[0] == "1", let registered = Int64(parts[1]), let expires = Int64(parts[2])
            else { return nil }
            self.init(registeredMs: registered, expiresMs: expires, settings: String(parts[3]))
        }

        init(registeredMs: Int64, expiresMs: Int64, settings: String) {
            self.registeredMs = registeredMs
            self.expiresMs = expiresMs
            self.settings = settings
        }
    }

    /// This instance's id in the hash: host, process id and a random suffix
    /// (two processes on one host, or one restarted with the same pid, never share it).
    let memberId: String
    let settings: String
    let group: String
    /// Set when this instance registered (kept across heartbeats: the order
    /// of registration decides which of two racing members stops).
    private(set) var registeredMs: Int64?
    private(set) var lastHeartbeatMs: Int64 = .min

    init(memberId: String, settings: String, group: String) {
        self.memberId = memberId
        self.settings = settings
        self.group = group
    }

    /// The entry this instance writes at `nowMs`.
    mutating func entry(nowMs: Int64) -> MemberEntry {
        let registered = registeredMs ?? nowMs
        registeredMs = registered
        lastHeartbeatMs = nowMs
        return MemberEntry(registeredMs: registered, expiresMs: nowMs + Self.ttlMs, settings: settings)
    }

    func heartbeatDue(nowMs: Int64) -> Bool { nowMs - lastHeartbeatMs >= Self.heartbeatMs }

    /// What the members' hash says about this instance's settings.
    enum Verdict: Equatable {
        /// No live member runs other settings.
        case agreed
        /// A live member registered earlier (or a member, at start) runs other
        /// settings: this instance must not run. The message names each difference.
        case refuse(String)
        /// A live member registered later runs other settings: it will stop
        /// at its next heartbeat; this instance goes on (and says so).
        case warn(String)
    }

    /// Judges the hash's entries (field → value) at `nowMs`. Before this
    /// instance registered (`registeredMs` nil) any live member with other
    /// settings refuses it. Expired and unreadable entries are ignored;
    /// `expired` lists the expired fields (the caller removes them).
    func judge(_ entries: [String: String], nowMs: Int64) -> (verdict: Verdict, expired: [String]) {
        var expired: [String] = []
        var refusal: String?
        var warning: String?
        for (member, text) in entries.sorted(by: { $0.key < $1.key }) where member != memberId {
            guard let entry = MemberEntry(decoding: text) else { continue }
            guard entry.expiresMs > nowMs else {
                expired.append(member)
                continue
            }
            guard entry.settings != settings else { continue }
            let differences = Topology.groupSettingDifferences(mine: settings, theirs: entry.settings)
            let message = "instance \(member) of consumer group \(group) runs another topology (\(differences.joined(separator: "; "))): "
                + "every instance of a group must run the same topology file; stop the group and start every instance with the new file "
                + "(docs/OPERATIONS.md, \"Scaling\")"
            if let mine = registeredMs {
                // Both registered (they raced past each other's start): the later one stops.
                if (entry.registeredMs, member) < (mine, memberId) {
                    refusal = refusal ?? message
                } else {
                    warning = warning ?? message + "; it stops at its next heartbeat"
                }
            } else {
                let inSeconds = max(0, (entry.expiresMs - nowMs + 999) / 1000)
                refusal = refusal ?? message
                    + "; if that instance is gone (killed without a clean stop), its entry expires within \(inSeconds) s"
            }
        }
        if let refusal { return (.refuse(refusal), expired) }
        if let warning { return (.warn(warning), expired) }
        return (.agreed, expired)
    }
}
