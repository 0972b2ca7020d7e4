/// An event routed to the item-keyed stage: one per interaction, one per shown
/// item of an impression.
public struct ItemEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Skips are routed too (item features ignore them; the embeddings joiner needs them).
        case interaction(Action, dwellMs: Int64?)
        case impression(position: Int32?)
    }

    public var itemId: String
    public var userId: String
    public var ts: EventTimeMs
    public var kind: Kind
    public var requestId: String?
    /// The user's most recent positive items before this one, newest first
    /// (attached by the user stage to positives when embeddings are on; the
    /// item's owner counts co-occurrences with them). Empty when not attached.
    public var userHistory: [String]

    public init(itemId: String, userId: String, ts: EventTimeMs, kind: Kind, requestId: String? = nil,
                userHistory: [String] = []) {
        self.itemId = itemId
        self.userId = userId
        self.ts = ts
        self.kind = kind
        self.requestId = requestId
        self.userHistory = userHistory
    }

    /// True for click/watch/like/share interactions.
    public var isPositiveInteraction: Bool {
        if case .interaction(let a, _) = kind { return a.isPositive }
        return false
    }
}
