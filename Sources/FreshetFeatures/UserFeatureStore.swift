import FreshetCore

/// Keyed state for the user features of one task (one input partition).
///
/// Takes every valid interaction however late (DESIGN.md: recent items and the
/// interaction count are not windowed). Skips change nothing. Single-threaded:
/// owned by the task that runs it.
///
/// Layout: user ids map to dense slots; item ids are interned store-wide so a
/// recent-items entry costs 12 bytes. The item interner only grows (an item id
/// is kept while the task lives, shared by all users that saw it).
package final class UserFeatureStore {
    package let recentCapacity: Int

    struct UserState {
        /// The key, kept with the state: the index compares keys here, next to the data.
        let id: String
        var recent = RecentItems()
        var count: Int64 = 0
        var updatedMs: EventTimeMs = .min
        /// `DirtyTracker` bits.
        var dirtyFlags: UInt8 = 0
    }

    // Owned by one task, never accessed concurrently or reentrantly: the dynamic
    // exclusivity checks on these hot properties are turned off (see ItemFeatureStore).
    @exclusivity(unchecked) var slotOf = KeyIndex()
    @exclusivity(unchecked) var states: [UserState] = []
    @exclusivity(unchecked) var itemNames = StringInterner()
    /// The interned ids' bytes, for rendering and checkpoints (synced lazily).
    @exclusivity(unchecked) var itemBytes = ItemNameBytes()
    @exclusivity(unchecked) var dirty = DirtyTracker()

    package init(recentCapacity: Int = 50) {
        precondition(recentCapacity > 0, "recent capacity must be positive")
        self.recentCapacity = recentCapacity
    }

    /// Number of users with state.
    package var count: Int { states.count }

    /// Folds one interaction in. Positive actions update recent items, the count and
    /// `updatedMs` (max event time); `skip` is ignored.
    package func apply(_ interaction: Interaction) {
        guard interaction.action.isPositive else { return }
        let slot = self.slot(for: interaction.userId)
        let item = itemNames.intern(interaction.itemId)
        let i = Int(slot)
        states[i].count &+= 1
        if interaction.ts > states[i].updatedMs { states[i].updatedMs = interaction.ts }
        _ = states[i].recent.record(item, ts: interaction.ts, capacity: recentCapacity, idLess: { self.itemIdLess($0, $1) })
        // The count changes on every positive, so the user is always dirty.
        dirty.mark(slot, flags: &states[i].dirtyFlags)
    }

    /// `apply` for an interaction decoded with its ids as bytes (valid
    /// UTF-8; `DecodedEvent`): a known user and a known item cost no `String`.
    /// `positive` is `action.isPositive`; skips change nothing.
    @inline(__always)
    package func apply(userId: UnsafeRawBufferPointer, itemId: UnsafeRawBufferPointer, ts: EventTimeMs, positive: Bool) {
        guard positive else { return }
        applyPositive(slot: slot(forValidUTF8: userId), itemId: itemId, ts: ts)
    }

    /// `apply` of a positive interaction for the user in `slot` (from
    /// `slot(forValidUTF8:)`): a caller that needs the slot anyway (the
    /// embeddings' user side) looks the user up once.
    @inline(__always)
    package func applyPositive(slot: UInt32, itemId: UnsafeRawBufferPointer, ts: EventTimeMs) {
        let item = itemNames.intern(validUTF8: itemId)
        let i = Int(slot)
        states[i].count &+= 1
        if ts > states[i].updatedMs { states[i].updatedMs = ts }
        _ = states[i].recent.record(item, ts: ts, capacity: recentCapacity, idLess: { self.itemIdLess($0, $1) })
        dirty.mark(slot, flags: &states[i].dirtyFlags)
    }

    /// Byte-wise order of two interned items' ids (`RecentItems`' tie-break).
    @inline(__always)
    private func itemIdLess(_ a: UInt32, _ b: UInt32) -> Bool {
        IdBytes.less(itemNames[a], itemNames[b])
    }

    package func features(of userId: String) -> UserFeatures? {
        guard let slot = lookup(userId) else { return nil }
        let s = states[Int(slot)]
        return UserFeatures(recentItems: s.recent.items.map { itemNames[$0] },
                            interactionCount: s.count, updatedMs: s.updatedMs)
    }

    /// User ids changed since the previous call (for the Redis flush).
    package func takeDirty() -> [String] {
        let slots = dirty.takeFlush()
        for s in slots { states[Int(s)].dirtyFlags &= ~DirtyTracker.flushBit }
        return slots.map { states[Int($0)].id }
    }

    /// Marks the user for the next flush, which writes its whole hash again
    /// (a key Redis refused, `RefusedEntity`); no checkpoint entry, its state
    /// did not change. Returns its slot, nil for a user with no state.
    @discardableResult
    package func markForRewrite(userId: String) -> UInt32? {
        guard let slot = lookup(userId) else { return nil }
        dirty.markForFlush(slot, flags: &states[Int(slot)].dirtyFlags)
        return slot
    }

    /// User ids changed since the previous call (for incremental checkpoints);
    /// independent of `takeDirty`.
    package func takeChangedForCheckpoint() -> [String] {
        let slots = dirty.takeCheckpoint()
        for s in slots { states[Int(s)].dirtyFlags &= ~DirtyTracker.checkpointBit }
        return slots.map { states[Int($0)].id }
    }

    /// All user ids with state (for full snapshots).
    package var allUserIds: [String] { states.map(\.id) }

    package func removeAll() {
        slotOf.removeAll()
        states.removeAll()
        itemNames.removeAll()
        itemBytes.removeAll()
        dirty.removeAll()
    }

    @inline(__always)
    func lookup(_ userId: String) -> UInt32? {
        slotOf.slot(tag: KeyIndex.tag(userId)) { IdBytes.equal(states[Int($0)].id, userId) }
    }

    @inline(__always)
    func slot(for userId: String) -> UInt32 {
        let next = UInt32(truncatingIfNeeded: states.count)
        let s = slotOf.slot(tag: KeyIndex.tag(userId), isKey: { IdBytes.equal(states[Int($0)].id, userId) }, orInsert: { next })
        if s != next { return s }
        states.append(UserState(id: userId))
        return s
    }

    /// The slot of a user id given as valid UTF-8 bytes, added (with no
    /// state yet) if new; a `String` is made only for a new user.
    @inline(__always)
    package func slot(forValidUTF8 userId: UnsafeRawBufferPointer) -> UInt32 {
        let next = UInt32(truncatingIfNeeded: states.count)
        let s = slotOf.slot(tag: slotOf.tag(bytes: userId), isKey: { IdBytes.equal(states[Int($0)].id, bytes: userId) },
                            orInsert: { next })
        if s != next { return s }
        states.append(UserState(id: BorrowedByteReader.string(validUTF8: userId)))
        return s
    }
}
