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

    public init(itemId: String, userId: String, ts: EventTimeMs, kind: Kind, requestId: String? = nil) {
        self.itemId = itemId
        self.userId = userId
        self.ts = ts
        self.kind = kind
        self.requestId = requestId
    }

    /// True for click/watch/like/share interactions.
    public var isPositiveInteraction: Bool {
        if case .interaction(let a, _) = kind { return a.isPositive }
        return false
    }
}
