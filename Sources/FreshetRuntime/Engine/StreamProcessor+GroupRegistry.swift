import Foundation
import FreshetRedis

/// The group's members and their settings in Redis (`GroupTopologyRegistry`):
/// registered at start, refreshed from the processing loop, removed at stop.
extension StreamProcessor {
    /// At start: refuses to run (`ProcessorError.configuration`) while a live
    /// member of the group runs other group settings; else writes this
    /// instance's entry (and removes expired ones).
    /// - Throws: the refusal, or a read of the members that failed for good.
    func registerInGroup() throws {
        let nowMs = clockNowMs()
        let entries = try readGroupMembers()
        let (verdict, expired) = groupRegistry.judge(entries, nowMs: nowMs)
        if case .refuse(let message) = verdict { throw ProcessorError.configuration(message) }
        do {
            try writeGroupEntry(nowMs: nowMs, removing: expired)
            logger.info("registered in the group's members", metadata: ["member": "\(groupRegistry.memberId)"])
        } catch {
            // Redis refusing writes (maxmemory, say) must not stop a start the
            // writer would ride out; the heartbeat writes the entry later.
            logger.warning("could not register in \(keys.groupMembers) (retried at the next heartbeat): \(error)")
        }
    }

    /// Every `GroupTopologyRegistry.heartbeatMs`: refreshes this instance's
    /// entry and reads the others'. A member registered earlier with other
    /// settings stops this one (a fatal configuration error at the next
    /// turn of the loop); a later one is warned about once. A Redis error
    /// only skips the heartbeat (the writer reports outages).
    func groupRegistryHeartbeat(nowMs: Int64) {
        guard groupRegistry.heartbeatDue(nowMs: nowMs) else { return }
        do {
            try writeGroupEntry(nowMs: nowMs, removing: [])
            let (verdict, expired) = groupRegistry.judge(try readGroupMembers(), nowMs: nowMs)
            if !expired.isEmpty { try removeGroupEntries(expired) }
            switch verdict {
            case .agreed:
                groupRegistryWarning = nil
            case .refuse(let message):
                fatalError = fatalError ?? ProcessorError.configuration(message)
            case .warn(let message):
                if groupRegistryWarning != message { logger.warning("\(message)") }
                groupRegistryWarning = message
            }
        } catch {
            logger.debug("group members heartbeat skipped: \(error)")
        }
    }

    /// At stop: removes this instance's entry (a crash leaves it to expire).
    func leaveGroupRegistry() {
        guard groupRegistry.registeredMs != nil else { return }
        do {
            try removeGroupEntries([groupRegistry.memberId])
        } catch {
            logger.debug("could not remove this instance from the group's members (it expires): \(error)")
        }
    }

    private func readGroupMembers() throws -> [String: String] {
        try hashGetAll(keys.groupMembers).mapValues { String(decoding: $0, as: UTF8.self) }
    }

    private func writeGroupEntry(nowMs: Int64, removing expired: [String]) throws {
        let entry = groupRegistry.entry(nowMs: nowMs)
        var pipeline = RedisPipeline()
        if !expired.isEmpty { pipeline.add(RedisCommand(arguments: [Array("HDEL".utf8), Array(keys.groupMembers.utf8)] + expired.map { Array($0.utf8) })) }
        pipeline.add(RedisCommand(arguments: [Array("HSET".utf8), Array(keys.groupMembers.utf8),
                                              Array(groupRegistry.memberId.utf8), Array(entry.encoded.utf8)]))
        for reply in try controlExecute(pipeline) { _ = try reply.checked(context: "registering in \(keys.groupMembers)") }
    }

    private func removeGroupEntries(_ members: [String]) throws {
        var pipeline = RedisPipeline()
        pipeline.add(RedisCommand(arguments: [Array("HDEL".utf8), Array(keys.groupMembers.utf8)] + members.map { Array($0.utf8) }))
        for reply in try controlExecute(pipeline) { _ = try reply.checked(context: "removing members from \(keys.groupMembers)") }
    }
}

extension GroupTopologyRegistry {
    /// `<host>:<pid>:<6 random hex digits>`.
    static func makeMemberId() -> String {
        let suffix = String(UInt32.random(in: 0..<0x100_0000), radix: 16)
        return "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):"
            + String(repeating: "0", count: 6 - suffix.count) + suffix
    }
}
