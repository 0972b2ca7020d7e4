/// Why an input message was rejected. It goes, with `reason` and `detail`, to the
/// dead-letter topic and into the bad-input metric (labelled by `reason.rawValue`).
package struct BadInput: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable machine-readable reasons; the raw values are metric labels and DLQ headers.
    package enum Reason: String, Sendable, CaseIterable {
        case invalidUTF8 = "invalid_utf8"
        case malformedJSON = "malformed_json"
        case notAnObject = "not_an_object"
        case missingField = "missing_field"
        case wrongType = "wrong_type"
        case unknownAction = "unknown_action"
        case timestampOutOfRange = "timestamp_out_of_range"
        case invalidField = "invalid_field"
        /// A null (tombstone) value: dead-lettered with a null value.
        case nullValue = "null_value"
        /// Valid JSON nested deeper than `EventDecoder.maxNestingDepth` levels.
        case nestingTooDeep = "nesting_too_deep"
        /// A valid record one of whose derived records is larger than any
        /// message Freshet may produce (`output.max_message_bytes`).
        case recordTooLarge = "record_too_large"
    }

    package var reason: Reason
    /// A short human explanation naming the field or byte offset,
    /// e.g. "field 'action' has unknown value 'buy'".
    package var detail: String

    package init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    package init(reason: Reason, detail: String) {
        self.init(reason, detail)
    }

    package var description: String { "\(reason.rawValue): \(detail)" }
}
