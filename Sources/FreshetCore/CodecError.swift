/// A failure to decode a state snapshot or repartition record. `context` names
/// what was being read (e.g. "item_event.user_id").
public struct CodecError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case truncated, invalidVarint = "invalid_varint", invalidUTF8 = "invalid_utf8"
        case unknownVersion = "unknown_version", invalidTag = "invalid_tag", invalidValue = "invalid_value"
        case trailingBytes = "trailing_bytes"
    }

    public var kind: Kind
    public var context: String

    public init(_ kind: Kind, _ context: String) {
        self.kind = kind
        self.context = context
    }

    public var description: String { "codec error (\(kind.rawValue)): \(context)" }
}
