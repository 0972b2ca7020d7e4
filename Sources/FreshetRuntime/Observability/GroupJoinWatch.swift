/// Says when an instance has been out of its consumer group for long: a
/// bounded run that never gets partitions otherwise prints `lag ?` once a
/// second and nothing else (a breaker waited 11 minutes on a group the test
/// broker had wedged). Warns after `warnAfterMs` out of the group, then every
/// `warnAfterMs` while it lasts; joining resets it.
struct GroupJoinWatch {
    static let warnAfterMs: Int64 = 30_000

    private var outSinceMs: Int64?
    private var lastWarningMs: Int64?

    /// - Returns: how long the instance has been out of the group, ms, when
    ///   a warning is due now; nil otherwise.
    mutating func check(memberOfGroup: Bool, nowMs: Int64) -> Int64? {
        guard !memberOfGroup else {
            outSinceMs = nil
            lastWarningMs = nil
            return nil
        }
        let since = outSinceMs ?? nowMs
        outSinceMs = since
        guard nowMs - since >= Self.warnAfterMs, nowMs - (lastWarningMs ?? since) >= Self.warnAfterMs else { return nil }
        lastWarningMs = nowMs
        return nowMs - since
    }
}
