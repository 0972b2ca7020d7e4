/// Users' most recent positive items, newest first, at most `capacity` each:
/// what the user stage attaches to a routed positive, and what a user vector
/// (and session vector) is the mean of. Not thread-safe: owned by one task.
package struct UserHistory {
    package let capacity: Int
    private var recent: [ByteId: [ByteId]] = [:]

    package init(capacity: Int = 10) { self.capacity = capacity }

    package var count: Int { recent.count }

    /// The user's recent positive items, newest first.
    package func items(of user: ByteId) -> [ByteId] { recent[user] ?? [] }

    /// Records a positive (a repeat moves the item to the front); returns the
    /// history as it was before (what the positive co-occurs with).
    @discardableResult
    package mutating func record(user: ByteId, item: ByteId) -> [ByteId] {
        let before = recent[user] ?? []
        var next = before
        next.removeAll { $0 == item }
        next.insert(item, at: 0)
        if next.count > capacity { next.removeLast(next.count - capacity) }
        recent[user] = next
        return before
    }

    package mutating func remove(_ user: ByteId) { recent[user] = nil }

    /// Restores a user's history (checkpoint restore).
    package mutating func restore(user: ByteId, items: [ByteId]) { recent[user] = Array(items.prefix(capacity)) }

    package var users: Dictionary<ByteId, [ByteId]>.Keys { recent.keys }
}
