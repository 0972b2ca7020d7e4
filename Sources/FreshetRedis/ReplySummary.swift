import CHiredis

/// What one reply held, as far as a transaction's reading needs it, filled
/// by `ReplySummary.objectFunctions` instead of a tree of `redisReply`s.
///
/// Why: a flush queues thousands of commands, each answered `+QUEUED` and
/// then by one element of `EXEC`'s array; hiredis's default object functions
/// allocate (and `freeReplyObject` walks and frees) a `redisReply`, plus a
/// copy of its text, for every one of them, which was about a third of the
/// Redis writer thread's CPU. Only errors matter there, so only errors
/// allocate here (their text).
struct ReplySummary {
    /// The top-level reply's type, `REDIS_REPLY_*` (0 before one was read).
    var type: Int32 = 0
    /// Its element count when it is an array.
    var count = 0
    /// Its text when it is an error.
    var error: String?
    /// Its direct elements that are errors, by position (from 0), in order;
    /// errors deeper in nested arrays are not listed.
    var elementErrors: [TransactionOutcome.Failure] = []

    /// Forgets the previous reply (keeps `elementErrors`' storage).
    mutating func reset() {
        type = 0
        count = 0
        error = nil
        if !elementErrors.isEmpty { elementErrors.removeAll(keepingCapacity: true) }
    }

    /// hiredis object functions that record into the `ReplySummary` the
    /// reader's `privdata` points to and return that pointer as every
    /// "object" (hiredis only needs it non-NULL; NULL would mean out of
    /// memory). `freeObject` does nothing: nothing was allocated. Install
    /// them on a reader only while reading replies that nothing else will
    /// free with `freeReplyObject` (`RedisConnection.withSummarizingReader`).
    nonisolated(unsafe) static let objectFunctions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
        let table = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
        table.initialize(to: redisReplyObjectFunctions(
            createString: { task, text, length in
                record(task, type: task?.pointee.type ?? REDIS_REPLY_STRING, text: text, length: length)
            },
            createArray: { task, elements in
                record(task, type: REDIS_REPLY_ARRAY, count: Int(elements))
            },
            createInteger: { task, _ in
                record(task, type: REDIS_REPLY_INTEGER)
            },
            createNil: { task in
                record(task, type: REDIS_REPLY_NIL)
            },
            freeObject: { _ in }))
        return table
    }()

    /// Records one object hiredis parsed: a top-level reply's type (and
    /// count or error text), or an error among a top-level array's direct
    /// elements. Returns the summary's address (hiredis's "object"), or nil
    /// (hiredis then fails the read as out of memory) without a summary.
    private static func record(_ task: UnsafePointer<redisReadTask>?, type: Int32, count: Int = 0,
                               text: UnsafeMutablePointer<CChar>? = nil, length: Int = 0) -> UnsafeMutableRawPointer? {
        guard let task, let privdata = task.pointee.privdata else { return nil }
        let summary = privdata.assumingMemoryBound(to: ReplySummary.self)
        guard let parent = task.pointee.parent else {
            summary.pointee.type = type
            summary.pointee.count = count
            if type == REDIS_REPLY_ERROR { summary.pointee.error = Self.text(text, length) }
            return privdata
        }
        if type == REDIS_REPLY_ERROR && parent.pointee.parent == nil {
            summary.pointee.elementErrors.append(.init(index: Int(task.pointee.idx), message: Self.text(text, length)))
        }
        return privdata
    }

    private static func text(_ text: UnsafeMutablePointer<CChar>?, _ length: Int) -> String {
        guard let text, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: text, count: length), as: UTF8.self)
    }
}
