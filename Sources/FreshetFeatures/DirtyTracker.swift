/// Two independent "changed since last taken" sets over dense slot indices:
/// one for the Redis flush, one for incremental checkpoints. A flag byte per slot
/// deduplicates without hashing; the lists keep first-change order.
struct DirtyTracker {
    private static let flushBit: UInt8 = 1
    private static let checkpointBit: UInt8 = 2

    private var flags: [UInt8] = []
    private var flush: [UInt32] = []
    private var checkpoint: [UInt32] = []

    /// Makes room for slot indices below `count`.
    mutating func grow(to count: Int) {
        if flags.count < count { flags.append(contentsOf: repeatElement(0, count: count - flags.count)) }
    }

    @inline(__always)
    mutating func mark(_ slot: UInt32) {
        let i = Int(slot)
        let f = flags[i]
        if f == (Self.flushBit | Self.checkpointBit) { return }
        if f & Self.flushBit == 0 { flush.append(slot) }
        if f & Self.checkpointBit == 0 { checkpoint.append(slot) }
        flags[i] = Self.flushBit | Self.checkpointBit
    }

    mutating func takeFlush() -> [UInt32] {
        let out = flush
        flush.removeAll(keepingCapacity: true)
        for s in out { flags[Int(s)] &= ~Self.flushBit }
        return out
    }

    mutating func takeCheckpoint() -> [UInt32] {
        let out = checkpoint
        checkpoint.removeAll(keepingCapacity: true)
        for s in out { flags[Int(s)] &= ~Self.checkpointBit }
        return out
    }

    mutating func removeAll() {
        flags.removeAll()
        flush.removeAll()
        checkpoint.removeAll()
    }
}
