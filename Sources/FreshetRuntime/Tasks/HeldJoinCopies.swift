import FreshetCore

/// The counts stage's join copies that reached an item task before its
/// features' watermark passed them, held in arrival order per counts
/// partition until it does.
///
/// Why: a copy joins with the item features of its impression, which are
/// evaluated once the features' watermark passes the impression's known-from
/// time (`PendingImpressionFeatures`). The counts stage releases a copy when
/// *its* inputs' watermark passes it, so a copy can arrive first (the two
/// repartition topics are read at their own pace). Held in each counts
/// partition's order, a user's copies keep their event-time order (a
/// user's records all come from one counts partition), and the join's
/// watermark, never ahead of the features', closes no window before a held
/// copy known before it reaches the joiner.
///
/// Held records are past the task's input offset, so they are checkpointed
/// with it (`encode`/`restore`, meta field `join_held`); not yet admitted
/// by the duplicate filter, so a copy the counts stage sends again after a
/// crash of its own is dropped when released. Processing thread only.
struct HeldJoinCopies {
    private struct Held {
        var knownFrom: EventTimeMs
        /// The copy's bytes in its partition's arena.
        var start: Int
        var end: Int
    }

    /// The counts partitions that sent copies, in a fixed order, each with
    /// its held copies from `heads[n]` on. A few partitions: searched in
    /// order (a dictionary hashed the source for every copy read).
    private var sources: [DuplicateFilter.Source] = []
    private var queues: [[Held]] = []
    /// Per partition, its held copies' bytes back to back: an array per
    /// copy cost an allocation and a free each (~1% of the default
    /// topology's task layer, `freshet bench tasks --only 2`, where most
    /// copies are held). Emptied with its queue, compacted with it.
    private var arenas: [[UInt8]] = []
    private var heads: [Int] = []
    private(set) var count = 0

    @inline(__always)
    private func index(of source: DuplicateFilter.Source) -> Int? {
        sources.firstIndex { $0.topic == source.topic && $0.partition == source.partition }
    }

    /// Whether a copy from `source` known from `knownFrom` must wait: the
    /// features' watermark (evaluated through) has not passed it, or earlier
    /// copies of its partition wait.
    @inline(__always)
    func mustHold(_ source: DuplicateFilter.Source, knownFrom: EventTimeMs, watermark: EventTimeMs?) -> Bool {
        if count > 0, let n = index(of: source), queues[n].count > heads[n] { return true }
        return watermark.map { knownFrom > $0 } ?? true
    }

    mutating func hold(_ source: DuplicateFilter.Source, knownFrom: EventTimeMs, bytes: UnsafeRawBufferPointer) {
        let n: Int
        if let known = index(of: source) {
            n = known
        } else {
            n = sources.firstIndex { ($0.topic, $0.partition) > (source.topic, source.partition) } ?? sources.count
            sources.insert(source, at: n)
            queues.insert([], at: n)
            arenas.insert([], at: n)
            heads.insert(0, at: n)
        }
        let start = arenas[n].count
        arenas[n].append(contentsOf: bytes)
        queues[n].append(Held(knownFrom: knownFrom, start: start, end: arenas[n].count))
        count += 1
    }

    /// Hands over, partition by partition in a fixed order, the copies known
    /// by `watermark` (every copy when nil) from the head of each queue.
    mutating func release(through watermark: EventTimeMs?, _ body: (UnsafeRawBufferPointer) -> Void) {
        guard count > 0 else { return }
        for n in sources.indices {
            var head = heads[n]
            while head < queues[n].count, watermark.map({ queues[n][head].knownFrom <= $0 }) ?? true {
                let copy = queues[n][head]
                head += 1
                count -= 1
                // `body` never holds a copy (it reads released ones), so the arena stays put meanwhile.
                arenas[n].withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[copy.start..<copy.end])) }
            }
            if head == queues[n].count {
                queues[n].removeAll(keepingCapacity: true)
                arenas[n].removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 1_024 && head * 2 >= queues[n].count {
                compact(n, from: head)
                head = 0
            }
            heads[n] = head
        }
    }

    /// Drops partition `n`'s copies before `head` and their bytes.
    private mutating func compact(_ n: Int, from head: Int) {
        let offset = queues[n][head].start
        queues[n].removeFirst(head)
        arenas[n].removeFirst(offset)
        for k in queues[n].indices {
            queues[n][k].start -= offset
            queues[n][k].end -= offset
        }
    }

    private static let format: UInt8 = 1

    /// Checkpoint form: version, the number of partitions, then per
    /// partition (in a fixed order) its topic code, partition, number of
    /// copies and each copy's known-from time (zigzag) and bytes (length-prefixed).
    func encode() -> [UInt8] {
        var w = ByteWriter()
        w.write(byte: Self.format)
        let held = sources.indices.filter { queues[$0].count > heads[$0] }
        w.write(varint: UInt64(held.count))
        for n in held {
            w.write(varint: UInt64(sources[n].topic))
            w.write(zigzag: Int64(sources[n].partition))
            w.write(varint: UInt64(queues[n].count - heads[n]))
            for copy in queues[n][heads[n]...] {
                w.write(zigzag: copy.knownFrom)
                w.write(bytes: arenas[n][copy.start..<copy.end])
            }
        }
        return w.bytes
    }

    /// Replaces the held copies with a checkpoint's (`encode`'s form).
    /// - Throws: `CodecError` for truncated bytes or an unknown version.
    mutating func restore(_ bytes: [UInt8]) throws(CodecError) {
        sources = []
        queues = []
        arenas = []
        heads = []
        count = 0
        var r = ByteReader(bytes)
        let version = try r.readByte("held join copies version")
        guard version == Self.format else { throw CodecError(.unknownVersion, "held join copies: format \(version)") }
        let partitions = try r.readVarint("held partitions")
        for _ in 0..<partitions {
            let source = DuplicateFilter.Source(topic: UInt8(truncatingIfNeeded: try r.readVarint("held topic")),
                                                partition: Int32(truncatingIfNeeded: try r.readZigzag("held partition")))
            let n = try r.readVarint("held copies")
            for _ in 0..<n {
                let knownFrom = try r.readZigzag("held known from")
                let copy = try r.readBytes("held copy")
                copy.withUnsafeBytes { hold(source, knownFrom: knownFrom, bytes: $0) }
            }
        }
    }
}
