import HeapModule

/// Event-time deadlines, popped in (deadline, push order): the order a
/// binary heap of (deadline, sequence) gives, at a cost that does not grow
/// with the number held.
///
/// Why not a heap: the joiner and the features at impression hold one
/// deadline per impressed item (hundreds of thousands per task in a replay),
/// and each push and pop of a binary heap walks log2(n) nodes scattered over
/// megabytes: the heaps were 7% of the default topology's task CPU
/// (`freshet bench tasks`). Here deadlines fall into buckets of
/// `granularityMs` (a calendar queue, Brown 1988): a push appends to its
/// bucket (one hash lookup of an `Int64`), and only the distinct buckets are
/// in a heap; a bucket is sorted once, when the deadlines reach it.
///
/// Exact: pops come in increasing (deadline, push sequence), whatever the
/// order of the pushes, so a holder's output does not depend on the
/// queue. Single-threaded (a value type, owned by one task).
package struct DeadlineQueue<Payload> {
    package struct Node {
        package var deadline: Int64
        package var sequence: UInt64
        package var payload: Payload

        @inline(__always)
        static func precedes(_ a: Node, _ b: Node) -> Bool {
            a.deadline != b.deadline ? a.deadline < b.deadline : a.sequence < b.sequence
        }
    }

    /// Width of a bucket in event-time milliseconds.
    package let granularityMs: Int64
    private var buckets: [Int64: [Node]] = [:]
    /// The indices of the buckets in `buckets`.
    private var bucketIndices = Heap<Int64>()
    private var sequence: UInt64 = 0
    /// Deadlines held.
    package private(set) var count = 0

    /// - Parameter granularityMs: bucket width (> 0); a bucket's deadlines
    ///   are sorted together, so about the spacing of a holder's watermark steps.
    package init(granularityMs: Int64 = 1_000) {
        precondition(granularityMs > 0)
        self.granularityMs = granularityMs
    }

    package var isEmpty: Bool { count == 0 }

    /// Bytes held per deadline (a bucket's slot; the buckets' own overhead is small beside it).
    package static var bytesPerDeadline: Int { MemoryLayout<Node>.stride }

    /// The bucket of `deadline`: floor(deadline / granularity), for negative times too.
    @inline(__always)
    private func bucket(_ deadline: Int64) -> Int64 {
        let q = deadline / granularityMs
        return deadline % granularityMs < 0 ? q - 1 : q
    }

    /// Adds a deadline.
    package mutating func push(_ deadline: Int64, _ payload: Payload) {
        sequence &+= 1
        let b = bucket(deadline)
        let node = Node(deadline: deadline, sequence: sequence, payload: payload)
        var isNew = false
        buckets[b, default: { isNew = true; return [] }()].append(node)
        if isNew { bucketIndices.insert(b) }
        count += 1
    }

    /// Removes every deadline at or before `limit` and hands each to `body`,
    /// in increasing (deadline, push sequence).
    package mutating func popAll(through limit: Int64, _ body: (Int64, Payload) -> Void) {
        let last = bucket(limit)
        while let b = bucketIndices.min, b <= last {
            guard var nodes = buckets.removeValue(forKey: b) else {
                _ = bucketIndices.popMin()
                continue
            }
            if !Self.isSorted(nodes) { nodes.sort(by: Node.precedes) }
            if b < last {
                _ = bucketIndices.popMin()
                count -= nodes.count
                for node in nodes { body(node.deadline, node.payload) }
                continue
            }
            // The limit's own bucket: its deadlines up to the limit, the rest kept (sorted).
            let cut = nodes.firstIndex { $0.deadline > limit } ?? nodes.count
            count -= cut
            for node in nodes[..<cut] { body(node.deadline, node.payload) }
            if cut == nodes.count {
                _ = bucketIndices.popMin()
            } else {
                nodes.removeFirst(cut)
                buckets[b] = nodes
            }
            break
        }
    }

    /// Empties the queue.
    package mutating func removeAll() {
        buckets.removeAll()
        bucketIndices = Heap()
        count = 0
    }

    private static func isSorted(_ nodes: [Node]) -> Bool {
        var i = 1
        while i < nodes.count {
            if Node.precedes(nodes[i], nodes[i - 1]) { return false }
            i += 1
        }
        return true
    }
}
