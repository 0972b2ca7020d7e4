/// Two independent "changed since last taken" lists over dense slot indices:
/// one for the Redis flush, one for incremental checkpoints.
///
/// Deduplication uses a flag byte that the store keeps inside each key's state
/// (next to the data the update already touched, so marking costs no extra cache
/// miss); the lists keep first-change order.
struct DirtyTracker {
    static let flushBit: UInt8 = 1
    static let checkpointBit: UInt8 = 2
    static let both: UInt8 = 3

    private var flush: [UInt32] = []
    private var checkpoint: [UInt32] = []

    @inline(__always)
    mutating func mark(_ slot: UInt32, flags: inout UInt8) {
        let f = flags
        if f == Self.both { return }
        if f & Self.flushBit == 0 { flush.append(slot) }
        if f & Self.checkpointBit == 0 { checkpoint.append(slot) }
        flags = Self.both
    }

    /// The flush list; the caller clears `flushBit` in each slot's flags.
    /// Marks a slot for the next checkpoint only: its state changed in a way
    /// that does not change what Redis shows yet (a count in a future pane).
    @inline(__always)
    mutating func markForCheckpoint(_ slot: UInt32, flags: inout UInt8) {
        guard flags & Self.checkpointBit == 0 else { return }
        checkpoint.append(slot)
        flags |= Self.checkpointBit
    }

    /// Marks a slot for the next flush only: Redis must get the key's whole
    /// value again although the state did not change (a key Redis refused).
    @inline(__always)
    mutating func markForFlush(_ slot: UInt32, flags: inout UInt8) {
        guard flags & Self.flushBit == 0 else { return }
        flush.append(slot)
        flags |= Self.flushBit
    }

    mutating func takeFlush() -> [UInt32] {
        defer { flush.removeAll(keepingCapacity: true) }
        return flush
    }

    /// The checkpoint list; the caller clears `checkpointBit` in each slot's flags.
    mutating func takeCheckpoint() -> [UInt32] {
        defer { checkpoint.removeAll(keepingCapacity: true) }
        return checkpoint
    }

    mutating func removeAll() {
        flush.removeAll()
        checkpoint.removeAll()
    }
}
