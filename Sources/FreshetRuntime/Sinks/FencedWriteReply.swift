import FreshetRedis

/// What Redis answered to one `FencedWrite` (see the script's reply contract).
package enum FencedWriteReply: Sendable, Equatable {
    /// The write ran; `rejected` lists the keys Redis refused for good (e.g. a
    /// `WRONGTYPE` key), each with the server's message. Every other operation applied.
    case applied(rejected: [RejectedKey])
    /// The epoch check failed. `current` is the epoch Redis holds for the task,
    /// nil when the epoch key is missing.
    case refusedByEpoch(current: Int64?)
    /// Any other error reply (a script bug, an unexpected reply shape).
    case failed(String)

    package struct RejectedKey: Sendable, Equatable {
        /// The key as sent (a Feast row's key is binary: its u32 lengths).
        package var keyBytes: [UInt8]
        package var message: String
        /// The key as text, for logs (invalid UTF-8 repaired).
        package var key: String { String(decoding: keyBytes, as: UTF8.self) }
        /// The server's error prefix (`WRONGTYPE`, `ERR`, ...), the metric's `reason` label.
        package var reason: String { RedisError.serverErrorPrefix(message) }
        package init(keyBytes: [UInt8], message: String) {
            self.keyBytes = keyBytes
            self.message = message
        }
        package init(key: String, message: String) { self.init(keyBytes: Array(key.utf8), message: message) }
    }

    package init(_ reply: RedisReply) {
        switch reply {
        case .error(let message):
            if message.hasPrefix("FENCED") {
                let current = message.split(separator: " ").last.flatMap { Int64($0) }
                self = .refusedByEpoch(current: current)
            } else {
                self = .failed(message)
            }
        case .integer:
            self = .applied(rejected: [])
        case .array(let items):
            var rejected: [RejectedKey] = []
            var index = 1
            while index + 1 < items.count {
                rejected.append(RejectedKey(keyBytes: items[index].bytes ?? [], message: items[index + 1].string ?? ""))
                index += 2
            }
            self = .applied(rejected: rejected)
        default:
            self = .failed("unexpected reply \(reply)")
        }
    }

    /// How the owner of a task should read an epoch refusal of its write made
    /// at `epoch`: a newer owner took the task (the current epoch is higher), or
    /// the checkpoint store lost it (the epoch key is missing, or older than
    /// the one this owner acquired: Redis restarted empty or from an old snapshot).
    package static func epochRefusal(ours epoch: Int64, current: Int64?) -> EpochRefusal {
        guard let current, current >= epoch else { return .storeLost }
        return .fencedByNewerOwner
    }

    package enum EpochRefusal: Sendable, Equatable {
        case fencedByNewerOwner
        case storeLost
    }
}
