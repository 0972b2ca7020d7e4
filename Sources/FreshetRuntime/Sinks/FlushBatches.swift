/// Groups one flush's fenced writes (one per task, in task order) into
/// writer batches: one batch for an ordinary flush, but a large one (the
/// switch to a new refresh: every item's vector and a slice of every
/// task's users') goes out as its tasks are rendered, each time the
/// writes held reach `limitBytes`, so Redis works while the rest of the
/// flush renders. (One batch at the end left Redis idle for the whole
/// render: ~0.5 s at the end of the 3 M-event benchmark.) The writer
/// sends batches in order, so the writes land in task order either way.
struct FlushBatches {
    /// Rendered bytes past which the writes held so far go out.
    static let defaultLimitBytes = 1 << 20

    let limitBytes: Int
    private var writes: [FencedWrite] = []
    private var bytes = 0

    init(limitBytes: Int = Self.defaultLimitBytes) {
        self.limitBytes = limitBytes
    }

    /// Adds a task's write (an empty one is dropped); returns the batch to
    /// submit now when the writes held reached the limit.
    mutating func add(_ write: FencedWrite) -> RedisWriter.Batch? {
        guard !write.isEmpty else { return nil }
        bytes += write.byteCount
        writes.append(write)
        guard bytes >= limitBytes else { return nil }
        defer { writes.removeAll(); bytes = 0 }
        return RedisWriter.Batch(writes: writes)
    }

    /// The flush's last batch, which carries its freshness samples (their
    /// keys are acknowledged once it is, the batches before it being sent
    /// first); nil when there is nothing left to send.
    mutating func finish(eventTimeSamples: [Int64]) -> RedisWriter.Batch? {
        guard !writes.isEmpty || !eventTimeSamples.isEmpty else { return nil }
        defer { writes.removeAll(); bytes = 0 }
        return RedisWriter.Batch(writes: writes, eventTimeSamples: eventTimeSamples)
    }
}
