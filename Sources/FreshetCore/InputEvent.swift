/// One decoded input event, as the stream delivers it: an interaction (topic
/// `interactions`) or an impression (topic `impressions`).
///
/// The one event model of the project: the processor's stages, the embeddings
/// (joiner, evaluators) and the workload generators all speak it.
package enum InputEvent: Sendable, Equatable {
    case interaction(Interaction)
    case impression(Impression)

    /// Event time, epoch milliseconds.
    package var ts: EventTimeMs {
        switch self {
        case .interaction(let e): e.ts
        case .impression(let e): e.ts
        }
    }

    /// The user the event belongs to.
    package var userId: String {
        switch self {
        case .interaction(let e): e.userId
        case .impression(let e): e.userId
        }
    }
}
