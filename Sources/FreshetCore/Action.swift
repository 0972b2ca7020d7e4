/// The action of an interaction event (`action` field of the `interactions` topic).
///
/// Raw values are part of the repartition record format and of state snapshots:
/// never renumber them.
package enum Action: UInt8, Sendable, CaseIterable {
    case click = 1, watch, like, share, skip

    /// `click`, `watch`, `like` and `share` are positive feedback; `skip` is negative.
    package var isPositive: Bool { self != .skip }

    /// The wire name used in the JSON events.
    package var name: String {
        switch self {
        case .click: "click"
        case .watch: "watch"
        case .like: "like"
        case .share: "share"
        case .skip: "skip"
        }
    }

    /// Parses a wire name; names are case-sensitive.
    package init?(name: String) {
        switch name {
        case "click": self = .click
        case "watch": self = .watch
        case "like": self = .like
        case "share": self = .share
        case "skip": self = .skip
        default: return nil
        }
    }
}
