/// One reply from Redis, copied out of hiredis's reply tree (so it owns its
/// memory and is `Sendable`).
///
/// In pipelines, a failed command yields `.error(message)` in its slot; the
/// replies that follow are unaffected.
package enum RedisReply: Sendable, Equatable, CustomStringConvertible {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    case null
    case array([RedisReply])

    /// Text of a status or bulk reply (bulk decoded as UTF-8, invalid bytes repaired); nil otherwise.
    package var string: String? {
        switch self {
        case .status(let text): text
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The bytes of a bulk or status reply; nil otherwise.
    package var bytes: [UInt8]? {
        switch self {
        case .bulk(let bytes): bytes
        case .status(let text): Array(text.utf8)
        default: nil
        }
    }

    /// An integer reply, or a bulk/status reply holding a decimal integer
    /// (HGET of a counter); nil otherwise.
    package var int: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk, .status: string.flatMap { Int64($0) }
        default: nil
        }
    }

    /// The elements of an array reply; nil otherwise.
    package var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    package var isNull: Bool { self == .null }

    /// The message of an error reply; nil otherwise.
    package var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    package var isError: Bool { errorMessage != nil }

    /// The reply itself, or, for an error reply, a thrown `RedisError`
    /// (`.server(prefix)` or `.authentication`) with the given context.
    package func checked(context: @autoclosure () -> String = "reply") throws(RedisError) -> RedisReply {
        if case .error(let message) = self { throw RedisError.server(message, context: context()) }
        return self
    }

    /// A flat `[field, value, field, value, ...]` array (HGETALL, HSCAN's second
    /// element) as pairs, in server order; nil when the reply is not such an array.
    package var fieldValuePairs: [(field: String, value: [UInt8])]? {
        guard let elements = array, elements.count % 2 == 0 else { return nil }
        var pairs: [(field: String, value: [UInt8])] = []
        pairs.reserveCapacity(elements.count / 2)
        var index = 0
        while index < elements.count {
            guard let field = elements[index].string, let value = elements[index + 1].bytes else { return nil }
            pairs.append((field, value))
            index += 2
        }
        return pairs
    }

    package var description: String {
        switch self {
        case .status(let text): "+\(text)"
        case .error(let text): "-\(text)"
        case .integer(let value): ":\(value)"
        case .bulk(let bytes):
            if let text = String(validating: bytes, as: UTF8.self) { "\"\(text)\"" } else { "<\(bytes.count) bytes>" }
        case .null: "(nil)"
        case .array(let elements): "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
