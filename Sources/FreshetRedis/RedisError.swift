/// An error raised by the Redis layer, with enough context to act on it.
///
/// `kind` says what went wrong, `message` is the server's or hiredis's text,
/// `context` names the operation and endpoint where it was raised, and
/// `libraryCode` carries hiredis's `REDIS_ERR_*` code when hiredis raised it.
///
/// Two derived properties drive recovery:
/// - `requiresReconnect`: the connection is unusable (hiredis contexts cannot be
///   reused after an I/O or protocol error); only `reconnect()` helps.
/// - `isRetriable`: trying the same (idempotent) work again, after a reconnect
///   when `requiresReconnect` is set, may succeed.
package struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable, CustomStringConvertible {
        /// Could not connect, or the server closed the connection.
        case connection
        /// A read or write on the socket failed.
        case io
        /// The reply stream could not be parsed; the connection is unusable.
        case `protocol`
        /// The server replied with an error; the associated value is its prefix
        /// (`ERR`, `WRONGTYPE`, `NOSCRIPT`, `LOADING`, ...).
        case server(String)
        /// A connect or command timeout elapsed.
        case timeout
        /// AUTH failed, or the server demands authentication (`WRONGPASS`, `NOAUTH`).
        case authentication
        /// The feature is not available with this build (e.g. TLS with hiredis 0.14).
        case unsupported
        /// The caller passed something invalid (a bad URL, a misuse of the API).
        case invalidArgument

        package var description: String {
            switch self {
            case .connection: "connection"
            case .io: "io"
            case .protocol: "protocol"
            case .server(let prefix): "server(\(prefix))"
            case .timeout: "timeout"
            case .authentication: "authentication"
            case .unsupported: "unsupported"
            case .invalidArgument: "invalidArgument"
            }
        }
    }

    package var kind: Kind
    package var message: String
    /// Where the error was raised, e.g. `"execute(pipeline of 512 commands) on redis://127.0.0.1:6379/0"`.
    package var context: String
    /// hiredis's `REDIS_ERR_*` code (1 io, 2 other, 3 eof, 4 protocol, 5 oom) when hiredis raised the error.
    package var libraryCode: Int32?

    package init(kind: Kind, message: String, context: String, libraryCode: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.context = context
        self.libraryCode = libraryCode
    }

    /// Server error prefixes that describe a passing server state, not a bad
    /// command: retrying the same idempotent write later may succeed. `OOM`
    /// (maxmemory reached under `noeviction`), `MISCONF` (writes stopped after a
    /// failed RDB save) and `NOREPLICAS` (min-replicas-to-write unmet) refuse
    /// writes until an operator or the server frees the condition.
    package static let transientServerPrefixes: Set<String> = [
        "LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "OOM", "MISCONF", "NOREPLICAS",
    ]

    /// True when the connection can no longer be used and must be re-established.
    package var requiresReconnect: Bool {
        switch kind {
        case .connection, .io, .protocol, .timeout: true
        case .server(let prefix): prefix == "READONLY" || prefix == "MASTERDOWN"
        case .authentication, .unsupported, .invalidArgument: false
        }
    }

    /// True when retrying the same idempotent work (after a reconnect if
    /// `requiresReconnect`) may succeed. Protocol errors are not retriable: they
    /// point at a bug or a non-Redis peer, and resending would repeat them.
    package var isRetriable: Bool {
        switch kind {
        case .connection, .io, .timeout: true
        case .server(let prefix): Self.transientServerPrefixes.contains(prefix)
        case .protocol, .authentication, .unsupported, .invalidArgument: false
        }
    }

    package var description: String {
        var text = "RedisError.\(kind) in \(context): \(message)"
        if let libraryCode { text += " (hiredis err \(libraryCode))" }
        return text
    }

    /// The prefix of a server error message: its first word when that word is
    /// all upper-case letters (`"WRONGTYPE Operation against..."` → `"WRONGTYPE"`),
    /// else `"ERR"`.
    package static func serverErrorPrefix(_ message: String) -> String {
        let word = message.prefix { $0 != " " }
        if !word.isEmpty, word.allSatisfy({ $0.isASCII && $0.isUppercase }) {
            return String(word)
        }
        return "ERR"
    }

    /// The error for a server error reply. `WRONGPASS` and `NOAUTH` become
    /// `.authentication`; everything else `.server(prefix)`.
    package static func server(_ message: String, context: String) -> RedisError {
        let prefix = serverErrorPrefix(message)
        if prefix == "WRONGPASS" || prefix == "NOAUTH" {
            return RedisError(kind: .authentication, message: message, context: context)
        }
        return RedisError(kind: .server(prefix), message: message, context: context)
    }
}
