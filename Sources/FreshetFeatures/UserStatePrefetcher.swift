import CPrefetch
import FreshetCore

/// Asks the cache for the state of the users of records still to come, so
/// that a source task's user lookups find it there.
///
/// A lookup of a user the cache has not seen lately costs three dependent
/// misses, one after another: the index bucket (from the id's hash), the
/// user's state (the slot the bucket names), then the head of the user's
/// recent items (the array the state names). With many users nearly every
/// interaction pays all three (`freshet bench core`, 100 k users: about a
/// tenth of its samples; with this, about half of that, the rest mostly
/// the stages' own loads). Records are keyed by user id (DESIGN.md: producers key by
/// `user_id`), so the key names the user before the record is decoded: the
/// processing loop shows each record to its task `lookahead` records before
/// the task processes it, and each record shown moves every pending user one
/// stage on (the bucket now, the state at the next record, the recent items
/// at the one after). By the time a record is processed its misses are
/// over, and the misses of consecutive records overlap.
///
/// A hint only: nothing is looked up for real or changed. A record whose key
/// is not its user id (or absent), a new user, or a tag shared with another
/// user just gets no benefit.
package struct UserStatePrefetcher {
    /// Records shown ahead of the one processed: two for the stages, and
    /// two to spare so the last stage's miss is over in time. (Spacing the
    /// stages two records apart, eight ahead, measured no better.)
    package static let lookahead = 4

    private var shownTag: UInt32 = 0
    private var hasShownTag = false
    private var stateSlot: UInt32 = 0
    private var hasStateSlot = false

    package init() {}

    /// Moves the pending users one stage on and starts the user keyed by
    /// `key` (the record's Kafka key, nil when it has none).
    @inline(__always)
    package mutating func show(key: UnsafeRawBufferPointer?, store: UserFeatureStore) {
        // The user shown two records ago: its state line has arrived.
        if hasStateSlot { store.prefetchRecentItems(slot: stateSlot) }
        // The user shown one record ago: its bucket has arrived.
        hasStateSlot = false
        if hasShownTag, let slot = store.prefetchState(tag: shownTag) {
            stateSlot = slot
            hasStateSlot = true
        }
        hasShownTag = false
        if let key, !key.isEmpty {
            shownTag = store.prefetchBucket(key: key)
            hasShownTag = true
        }
    }
}

extension UserFeatureStore {
    /// Stage 1 of `UserStatePrefetcher`: the bucket of the user whose id is
    /// `key`; returns the id's tag.
    @inline(__always)
    package func prefetchBucket(key: UnsafeRawBufferPointer) -> UInt32 {
        let tag = slotOf.tag(bytes: key)
        slotOf.prefetchBucket(tag: tag)
        return tag
    }

    /// Stage 2: the state of the slot the tag's bucket names (nil: no user
    /// carries the tag, e.g. a new user).
    @inline(__always)
    package func prefetchState(tag: UInt32) -> UInt32? {
        guard let slot = slotOf.candidateSlot(tag: tag) else { return nil }
        // The address is taken inside, the hint given outside: see
        // `KeyIndex.prefetchBucket` (the same retain and release of `states`).
        let state: UnsafeRawPointer? = states.withUnsafeBufferPointer { s in
            guard Int(slot) < s.count, let base = s.baseAddress else { return nil }
            return UnsafeRawPointer(base + Int(slot))
        }
        if let state { freshet_prefetch(state) }
        return slot
    }

    /// Stage 3: the first entries of the slot's recent items.
    @inline(__always)
    package func prefetchRecentItems(slot: UInt32) {
        states.withUnsafeMutableBufferPointer { s in
            guard Int(slot) < s.count else { return }
            s[Int(slot)].recent.prefetchEntries()
        }
    }
}
