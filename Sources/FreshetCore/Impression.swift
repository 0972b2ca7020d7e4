/// A decoded, validated event of the `impressions` topic: the items a user was shown.
package struct Impression: Sendable, Equatable {
    package var requestId: String?
    package var userId: String
    /// Item ids in the order shown; may contain the same id twice (each counts).
    package var itemsShown: [String]
    /// When present, the same length as `itemsShown`.
    package var positions: [Int32]?
    package var ts: EventTimeMs

    package init(requestId: String? = nil, userId: String, itemsShown: [String],
                positions: [Int32]? = nil, ts: EventTimeMs) {
        self.requestId = requestId
        self.userId = userId
        self.itemsShown = itemsShown
        self.positions = positions
        self.ts = ts
    }

    /// The position of the item shown at `index`, from `positions`; nil when
    /// the event carried no positions (the index in the list is not a position).
    package func position(at index: Int) -> Int32? {
        guard let positions, index < positions.count else { return nil }
        return positions[index]
    }
}
