import FreshetCore
import FreshetFeatures

/// A task over one partition of `<group>-users-repartition`: user features for
/// input that producers did not key by user.
package final class UserTask {
    package let id: TaskId
    package let users: UserFeatureStore
    package var duplicates = DuplicateFilter()
    package var nextOffset: Int64?
    package private(set) var duplicatesDropped = 0
    package private(set) var undecodable = 0
    package private(set) var finishedSources: Set<DuplicateFilter.Source> = []
    private let expectedSources: Set<DuplicateFilter.Source>
    /// Which finished markers count (the engine sets `sinceMs` at acquisition).
    package var markerFence = FinishedMarkerFence()

    package init(id: TaskId, sources: Set<DuplicateFilter.Source>, recentCapacity: Int = 50) {
        self.id = id
        self.users = UserFeatureStore(recentCapacity: recentCapacity)
        self.expectedSources = sources
    }

    package var allSourcesFinished: Bool { expectedSources.isSubset(of: finishedSources) }

    package func process(_ record: InputRecord) {
        nextOffset = record.offset + 1
        markerFence.recordProducedAtMs = record.timestampMs
        undecodable += RecordBundle.decodeEach(record.value) { process($0) }
    }

    private func process(_ decoded: RepartitionRecord) {
        switch decoded {
        case .interaction(let interaction, let origin):
            guard duplicates.admit(origin) else { duplicatesDropped += 1; return }
            users.apply(interaction)
        case .watermark(let received):
            let marker = markerFence.admit(received)
            if marker.finished {
                finishedSources.insert(DuplicateFilter.Source(topic: marker.sourceTopic, partition: marker.sourcePartition))
            }
        case .item:
            undecodable += 1
        }
    }
}

extension UserTask: StreamTask {
    package func process(_ record: InputRecord, nowMs: Int64, output: TaskOutput) {
        process(record)
    }

    /// Event time does not matter here: user features have no windows.
    package func advanceTime(_ tick: TimeTick, output: TaskOutput) {}

    package var atEnd: Bool { allSourcesFinished }

    /// Position, per-source duplicate-filter progress, the user features' delta.
    package func snapshot() -> StateSnapshot {
        var snapshot = StateSnapshot()
        snapshot.meta.nextOffset = nextOffset
        snapshot.meta.sources = TaskCheckpoint.SourceProgress.of(duplicates, watermarks: [:])
        snapshot.takeUserDelta(users)
        return snapshot
    }

    package func restore(from checkpoint: TaskCheckpoint, state: StateScan, nowMs: Int64) throws {
        nextOffset = checkpoint.nextOffset
        for progress in checkpoint.sources {
            if let admitted = progress.lastAdmitted { duplicates.restore(progress.source, admitted) }
        }
        try state { key, bytes in try users.restoreEntry(userId: key, bytes: bytes) }
    }

    package func render(into write: inout FencedWrite, context: inout RenderContext) {
        context.renderer.renderUsers(users, into: &write, samples: &context.samples, counts: &context.counts,
                                     collectCounts: context.collectsCounts)
    }

    package func rewrite(_ entity: RefusedEntity) -> Bool {
        guard case .user(let userId) = entity else { return false }
        return users.markForRewrite(userId: userId) != nil
    }

    package var gauges: TaskGauges {
        var gauges = TaskGauges()
        gauges.store = ("users", users.count)
        gauges.counts = [(.duplicatesDropped, duplicatesDropped), (.undecodable, undecodable), (.staleFinishedMarkers, markerFence.stale)]
        return gauges
    }
}
