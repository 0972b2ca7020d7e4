/// A decoded, validated event whose ids stay bytes: what a source task needs
/// per record without a `String` per id or an array per event. Reuse one value
/// for every record of a task (`EventDecoder.decode(_:into:)` overwrites it;
/// its arrays keep their capacity).
///
/// Ids are read inside `withIds(in:_:)`, given the same bytes the event was
/// decoded from: an id without escapes (or an integer's decimal text) is read
/// where it lies in the message, an id with escapes from the value's own
/// buffer of unescaped bytes. Same acceptance, same values as the `String`
/// decoders (`decodeInteraction`, `decodeImpression`), which are built on it.
package struct DecodedEvent {
    package enum Kind: Sendable, Equatable {
        case interaction
        case impression
    }

    package internal(set) var kind: Kind = .interaction
    /// Event time (from `ts`, else the message timestamp), range-checked.
    package internal(set) var ts: EventTimeMs = 0
    /// Interactions only.
    package internal(set) var action: Action = .click
    /// Interactions only; non-negative when present.
    package internal(set) var dwellMs: Int64?
    /// Impressions only: the positions, valid when `hasPositions` (then one per shown item).
    package internal(set) var positions: [Int32] = []
    package internal(set) var hasPositions = false
    package internal(set) var hasRequestId = false

    /// Where each id lies. After decoding, `escaped == true` means "in `unescaped`".
    var user = JSONIdToken(start: 0, end: 0, escaped: false)
    var item = JSONIdToken(start: 0, end: 0, escaped: false)
    var request = JSONIdToken(start: 0, end: 0, escaped: false)
    var items: [JSONIdToken] = []
    var unescaped: [UInt8] = []

    package init() {}

    /// Number of shown items (impressions); 1 for an interaction.
    package var itemCount: Int { kind == .impression ? items.count : 1 }

    /// The position of shown item `k`, when the impression carried positions.
    @inline(__always)
    package func position(at k: Int) -> Int32? { hasPositions && k < positions.count ? positions[k] : nil }

    /// Calls `body` with the ids' bytes. `input` must be the bytes this value
    /// was decoded from; the id buffers are valid during the call only.
    /// (Not generic on purpose: callers in other modules then need no
    /// specialisation or metadata lookup per record.)
    package func withIds(in input: UnsafeRawBufferPointer, _ body: (EventIds) -> Void) {
        unescaped.withUnsafeBytes { scratch in
            items.withUnsafeBufferPointer { items in
                body(EventIds(input: input, scratch: scratch, userToken: user, itemToken: item,
                              requestToken: hasRequestId ? request : nil, items: items))
            }
        }
    }

    /// `withIds` for an event kept in a class's stored property (a task's
    /// reused event): `mutating`, so the call borrows the stored value in
    /// place, where a non-mutating call on a class's property copies it
    /// first (retaining and releasing its three arrays per record). `body`
    /// must not access the stored event itself (read its scalar fields
    /// before the call); the shown items' positions come with the ids.
    @inline(__always)
    package mutating func withIdsInPlace(in input: UnsafeRawBufferPointer, _ body: (EventIds) -> Void) {
        let request: JSONIdToken? = hasRequestId ? request : nil
        let user = self.user, item = self.item, hasPositions = self.hasPositions
        unescaped.withUnsafeBytes { scratch in
            items.withUnsafeBufferPointer { items in
                positions.withUnsafeBufferPointer { positions in
                    body(EventIds(input: input, scratch: scratch, userToken: user, itemToken: item,
                                  requestToken: request, items: items,
                                  positionValues: hasPositions ? positions : UnsafeBufferPointer(start: nil, count: 0)))
                }
            }
        }
    }

    /// Moves escaped ids' unescaped bytes into `unescaped` (called once per decode).
    mutating func resolveEscapes(_ input: UnsafeRawBufferPointer) {
        unescaped.removeAll(keepingCapacity: true)
        Self.resolve(&user, input, &unescaped)
        if kind == .interaction { Self.resolve(&item, input, &unescaped) }
        if hasRequestId { Self.resolve(&request, input, &unescaped) }
        if kind == .impression {
            for k in items.indices where items[k].escaped { Self.resolve(&items[k], input, &unescaped) }
        }
    }

    @inline(__always)
    private static func resolve(_ t: inout JSONIdToken, _ input: UnsafeRawBufferPointer, _ out: inout [UInt8]) {
        guard t.escaped else { return }
        let start = out.count
        JSONUnescape.unescape(UnsafeRawBufferPointer(rebasing: input[t.start..<t.end]), appendingTo: &out)
        t = JSONIdToken(start: start, end: out.count, escaped: true)
    }
}

/// The ids of a `DecodedEvent`, as borrowed UTF-8 bytes (valid inside
/// `DecodedEvent.withIds(in:_:)` only).
///
/// Its accessors are `@inlinable public` (docs/ARCHITECTURE.md, "Modules"):
/// as `package` they were calls from the tasks in other modules, one per
/// shown item routed (twice for a grouped one) and per position.
public struct EventIds {
    @usableFromInline let input: UnsafeRawBufferPointer
    @usableFromInline let scratch: UnsafeRawBufferPointer
    @usableFromInline let userToken: JSONIdToken
    @usableFromInline let itemToken: JSONIdToken
    @usableFromInline let requestToken: JSONIdToken?
    @usableFromInline let items: UnsafeBufferPointer<JSONIdToken>
    /// The `positions` array when present (only from `withIdsInPlace`), else empty.
    public internal(set) var positionValues = UnsafeBufferPointer<Int32>(start: nil, count: 0)

    @inlinable @inline(__always)
    func bytes(_ t: JSONIdToken) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: (t.escaped ? scratch : input)[t.start..<t.end])
    }

    /// `user_id`.
    @inlinable public var user: UnsafeRawBufferPointer { bytes(userToken) }
    /// `item_id` of an interaction.
    @inlinable public var item: UnsafeRawBufferPointer { bytes(itemToken) }
    /// `request_id` when present.
    @inlinable public var requestId: UnsafeRawBufferPointer? { requestToken.map(bytes) }
    /// Shown item `k` of an impression.
    @inlinable @inline(__always)
    public func shownItem(_ k: Int) -> UnsafeRawBufferPointer { bytes(items[k]) }
    /// Position of shown item `k` (`DecodedEvent.position(at:)`); from `withIdsInPlace` only.
    @inlinable @inline(__always)
    public func position(at k: Int) -> Int32? { k < positionValues.count ? positionValues[k] : nil }
}

extension EventIds {
    /// `String` of an id's bytes (valid UTF-8: the whole message was validated).
    package static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}
