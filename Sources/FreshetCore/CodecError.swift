/// A failure to decode a state snapshot or repartition record. `context` names
/// what was being read (e.g. "item_event.user_id").
package struct CodecError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: String, Sendable {
        case truncated, invalidVarint = "invalid_varint", invalidUTF8 = "invalid_utf8"
        case unknownVersion = "unknown_version", invalidTag = "invalid_tag", invalidValue = "invalid_value"
        case trailingBytes = "trailing_bytes"
    }

    package var kind: Kind
    package var context: String

    package init(_ kind: Kind, _ context: String) {
        self.kind = kind
        self.context = context
    }

    package var description: String { "codec error (\(kind.rawValue)): \(context)" }
}
