/// The user's `interaction_count` alone, for the counts stage (examples):
/// the interactions task sends it with every positive, so it must not build
/// the whole `UserFeatures` (recent items) per record.
extension UserFeatureStore {
    /// Positive interactions folded in for the user; nil for an unknown user.
    package func interactionCount(of userId: String) -> Int64? {
        guard let slot = lookup(userId) else { return nil }
        return states[Int(slot)].count
    }

    /// The same for a user id given as valid UTF-8 bytes (read in place).
    package func interactionCount(validUTF8 userId: UnsafeRawBufferPointer) -> Int64? {
        guard let slot = userSlot(validUTF8: userId) else { return nil }
        return states[Int(slot)].count
    }
}
