import FreshetCore

/// Which "finished" markers a repartition-fed task believes: only those
/// produced since the task was acquired (the record's Kafka timestamp at
/// or after `sinceMs`).
///
/// A bounded run's source tasks end their output with a marker that says
/// "this source partition is finished"; a task that has heard it from every
/// source is at its end, and the run may stop. The markers of an earlier
/// bounded run of the group stay in the repartition topics, and a task that
/// reads from before them (rebuilt from offset 0 after Redis lost its
/// checkpoint, or first started after the checkpoints' keys changed) took
/// them for this run's: it ended before the records this run's sources had
/// yet to send, and the run exited 0 with item features missing events (a
/// breaker's finding: 4 of 6 runs, up to 852 items off). Every marker that
/// counts is sent again each second while a bounded run's finished source
/// stays in the group (`TimeTick.finalMarkersDue`), so one produced since the
/// acquisition always follows; an earlier one keeps its watermark, not its end.
/// Clocks of the group's hosts are assumed to agree to within a second or
/// so (a producing host's clock ahead of the reader's by more than the time
/// between two runs could pass an old marker).
package struct FinishedMarkerFence: Sendable {
    /// Wall clock of the task's acquisition, ms; nil: every marker counts.
    package var sinceMs: Int64?
    /// Kafka timestamp of the record the task is reading, ms (nil: unknown,
    /// its markers believed); the task sets it before reading each record.
    package var recordProducedAtMs: Int64?
    /// Finished markers produced before `sinceMs`, whose end was not believed.
    package private(set) var stale = 0

    package init(sinceMs: Int64? = nil) { self.sinceMs = sinceMs }

    /// `marker`, read from the current record, as the task must apply it:
    /// with `finished` cleared when that end belongs to an earlier run.
    package mutating func admit(_ marker: WatermarkMarker) -> WatermarkMarker {
        guard marker.finished, let sinceMs, let producedAt = recordProducedAtMs, producedAt < sinceMs else { return marker }
        stale += 1
        var kept = marker
        kept.finished = false
        return kept
    }
}

/// A task that reads finished markers from a repartition topic (item, user
/// and count tasks): the engine sets its fence when it acquires the task.
package protocol ReadsFinishedMarkers: AnyObject {
    var markerFence: FinishedMarkerFence { get set }
}

extension ItemTask: ReadsFinishedMarkers {}
extension UserTask: ReadsFinishedMarkers {}
extension CountTask: ReadsFinishedMarkers {}
