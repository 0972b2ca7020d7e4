import FreshetCore
import FreshetFeatures

/// A task over one partition of `<group>-users-repartition`: user features for
/// input that producers did not key by user.
public final class UserTask {
    public let id: TaskId
    public let users: UserFeatureStore
    public var duplicates = DuplicateFilter()
    public var nextOffset: Int64?
    public private(set) var duplicatesDropped = 0
    public private(set) var undecodable = 0
    public private(set) var finishedSources: Set<DuplicateFilter.Source> = []
    private let expectedSources: Set<DuplicateFilter.Source>

    public init(id: TaskId, sources: Set<DuplicateFilter.Source>, recentCapacity: Int = 50) {
        self.id = id
        self.users = UserFeatureStore(recentCapacity: recentCapacity)
        self.expectedSources = sources
    }

    public var allSourcesFinished: Bool { expectedSources.isSubset(of: finishedSources) }

    public func process(_ record: InputRecord) {
        nextOffset = record.offset + 1
        undecodable += RecordBundle.decodeEach(record.value) { process($0) }
    }

    private func process(_ decoded: RepartitionRecord) {
        switch decoded {
        case .interaction(let interaction, let origin):
            guard duplicates.admit(origin) else { duplicatesDropped += 1; return }
            users.apply(interaction)
        case .watermark(let marker):
            if marker.finished {
                finishedSources.insert(DuplicateFilter.Source(topic: marker.sourceTopic, partition: marker.sourcePartition))
            }
        case .item:
            undecodable += 1
        }
    }
}
