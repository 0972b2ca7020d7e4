import Foundation
import FreshetCore
import FreshetEmbeddings
import FreshetFeast
import FreshetFeatures
import FreshetRedis

extension StreamProcessor {
    /// Writes user vectors (mean of the vectors of the head of the user's
    /// `recent_items_50` in the latest refresh) for users touched since the
    /// last sync, or for every user after a new refresh; removes the vector
    /// fields of a user who no longer has one.
    func renderUserEmbeddings(_ side: UserEmbeddingSide, store: UserFeatureStore, set: ItemVectorSet, into write: inout FencedWrite) {
        let field = topology.embeddings.fieldName
        let feast = renderer.feast
        let feastField = feast?.userEmbeddingField
        let freshetHashes = renderer.freshetHashes
        let userPrefix = keys.userPrefix
        side.takePublication(set, store: store, removed: { id in
            if freshetHashes { Self.deleteEmbeddingFields(self.keys.user(id), field: field, into: &write) }
            if let feast, let feastField { write.hashDelete(rawKey: feast.userKey(id), field: feastField) }
        }) { id, vector in
            if freshetHashes {
                // Straight into the command (no key String, no blob or field
                // arrays): this runs for every touched user every sync and for
                // every user after a switch (profile: a third of the user
                // publication's cost was these allocations).
                write.beginHashSet(prefix: userPrefix, id: id, fieldCount: 3)
                #if _endian(little)
                write.appendHashField(field, bytes: UnsafeRawBufferPointer(vector))
                #else
                write.appendHashField(field, EmbeddingBlob.encode(vector))
                #endif
                write.appendHashField("embedding_version", set.version)
                write.appendHashField("embedding_kind", Self.sessionKind)
            }
            if let feast, let feastField {
                let blob = EmbeddingBlob.encode(vector)
                write.hashSet(rawKey: feast.userKey(id), [(feastField, FeastValue.floatList(float32LittleEndian: blob))])
            }
        }
    }

    /// Removes a user's or an item's vector: its `field`, `embedding_version`
    /// and `embedding_kind`.
    static func deleteEmbeddingFields(_ key: String, field: String, into write: inout FencedWrite) {
        for name in [field, "embedding_version", "embedding_kind"] { write.hashDelete(key, field: name) }
    }

    /// The `embedding_kind` of user vectors.
    static let sessionKind = Array("session".utf8)
    /// The `embedding_kind` of item vectors: from the refresh of `embedding_version`,
    /// or folded in since from the item's own row (a new item). User vectors
    /// are means of `refresh` vectors only (docs/EMBEDDINGS.md, "User vectors").
    static let refreshKind = Array("refresh".utf8)
    static let foldInKind = Array("fold_in".utf8)

    /// Writes the vectors of the items of the item task of `partition` (all
    /// after a new refresh, else fold-ins of changed rows); deletes the fields
    /// of items that no longer have a vector.
    func renderItemEmbeddings(_ side: ItemEmbeddingSide, partition: Int32, set: ItemVectorSet, into write: inout FencedWrite) {
        let field = topology.embeddings.fieldName
        let version = Array(String(set.version).utf8)
        let feast = renderer.feast
        let feastField = feast?.itemEmbeddingField
        let output = self.output
        let publication = side.takePublication(set) { id in
            id.bytes.withUnsafeBytes { output?.partition(of: .items, keyBytes: $0) == partition }
        }
        for item in publication.vectors {
            let blob = EmbeddingBlob.encode(item.vector)
            if renderer.freshetHashes {
                write.hashSet(keys.item(item.id.string), [(field, blob), ("embedding_version", version),
                                                          ("embedding_kind", item.foldedIn ? Self.foldInKind : Self.refreshKind)])
            }
            if let feast, let feastField {
                write.hashSet(rawKey: feast.itemKey(item.id.string), [(feastField, FeastValue.floatList(float32LittleEndian: blob))])
            }
        }
        for id in publication.deleted {
            if renderer.freshetHashes { Self.deleteEmbeddingFields(keys.item(id.string), field: field, into: &write) }
            if let feast, let feastField { write.hashDelete(rawKey: feast.itemKey(id.string), field: feastField) }
        }
    }

    /// User vectors written and left out as unchanged by this instance's user sides (the run summary).
    var userVectorsWritten: (written: Int, unchanged: Int) {
        sourceTasks.values.reduce((0, 0)) { sum, task in
            (sum.0 + (task.userEmbeddings?.vectorsWritten ?? 0), sum.1 + (task.userEmbeddings?.unchangedSkipped ?? 0))
        }
    }

    func makeUserEmbeddingSide() -> UserEmbeddingSide? {
        topology.embeddings.enabled ? UserEmbeddingSide(settings: topology.embeddings) : nil
    }

    func makeItemEmbeddingSide() -> ItemEmbeddingSide? {
        topology.embeddings.enabled ? ItemEmbeddingSide(settings: topology.embeddings, counts: interactionCounts) : nil
    }

    /// Restores an item task's co-occurrence rows from its checkpoint.
    func restoreCooccurrenceRows(_ id: TaskId, into side: ItemEmbeddingSide) throws {
        try scanHashBytes(keys.checkpointEmbeddings(id)) { key, bytes in
            let row = try CooccurrenceSnapshot.decodeRow(bytes)
            side.rows.restoreRow(item: ByteId(bytes: key), degree: row.degree, lastSeen: row.lastSeen, entries: row.entries)
        }
    }


    /// Flushes until every user side finished its full republication (shutdown:
    /// everything current is published before exit).
    func finishUserRepublication() {
        // Bounded: a task that cannot write (no epoch) would never finish its slices.
        let users = sourceTasks.values.reduce(0) { $0 + ($1.users?.count ?? 0) }
        var rounds = users / UserEmbeddingSide.republishSlice + 2
        while rounds > 0, sourceTasks.values.contains(where: { $0.userEmbeddings?.republishing == true }) {
            flushFeatures(nowMs: clockNowMs())
            rounds -= 1
        }
    }

    // MARK: - Refresh

    /// The vectors a sync writes against: the refresher's latest result after
    /// a bounded run's final refresh (`switchVectorsNow`) or when a switch is
    /// due (`switchIsDue`); else the refresh already published. Switching rewrites every item and every user
    /// (each in its owner's task), so this bounds that cost to one full
    /// republication per interval, whatever the refresh cadence.
    func vectorSetToPublish(nowMs: Int64) -> ItemVectorSet? {
        guard let refresher else { return nil }
        let latest = refresher.latest
        let current = publishedVectors?.version ?? 0
        if latest.version != current,
           switchVectorsNow || switchIsDue(nowMs: nowMs) {
            publishedVectors = latest
            publishedVectorsSinceMs = nowMs
            logger.info("publishing a new embedding refresh", metadata: [
                "version": "\(latest.version)", "items": "\(latest.count)", "positives": "\(localPositives)"])
        }
        return publishedVectors
    }

    /// Whether a new refresh may replace the published one now (a bounded
    /// run's final refresh aside): the interval has passed and the run is not
    /// expected to end, with its final refresh, within it.
    func switchIsDue(nowMs: Int64) -> Bool {
        publishIntervalPassed(nowMs: nowMs) && !finalRefreshComesFirst
    }

    /// Whether `publish_interval` has passed since the last switch. Before
    /// the first one: at once in a live run (a cold start gets vectors as
    /// soon as there are any), since the run's start in a bounded run (a
    /// replay shorter than the interval publishes its final refresh only:
    /// the first refresh, after 2,000 positives, would be rewritten with
    /// every user and item at its end).
    func publishIntervalPassed(nowMs: Int64) -> Bool {
        if publishedVectors == nil && !options.stopAtEnd { return true }
        return nowMs - publishedVectorsSinceMs >= topology.embeddings.publishIntervalMs
    }

    /// A bounded run expected to end within `publish_interval`: its final
    /// refresh replaces the published vectors then, so a new refresh is not
    /// switched to (nor computed) before it. A switch rewrites every user
    /// and item; on the 3 M-event benchmark, runs whose first refresh was
    /// switched to mid-run wrote every user twice and took 30-36 s, the others
    /// 26-28 s (docs/EMBEDDINGS.md, "Twenty-fourth session"). Users touched
    /// meanwhile are still written at each sync, against the refresh
    /// already published (none in a run shorter than the interval: their
    /// vectors come with the final one).
    var finalRefreshComesFirst: Bool {
        guard options.stopAtEnd, refresher != nil else { return false }
        if boundedRunEnded { return true }
        guard let remaining = endEstimate.remainingMs(lag: stats.totalLag) else { return false }
        return remaining < topology.embeddings.publishIntervalMs
    }

    /// Positives handed to this instance's item tasks' counters (the refresh
    /// cadence, in events; read without waiting for the counting).
    var localPositives: Int { itemTasks.values.reduce(0) { $0 + ($1.embeddings?.positivesHandedOver ?? 0) } }

    /// The union of this instance's item tasks' rows.
    func localSnapshot() -> CooccurrenceSnapshot {
        CooccurrenceSnapshot.merged(itemTasks.keys.sorted().compactMap { itemTasks[$0]?.embeddings?.rows.snapshot() })
    }

    /// Checkpoint hashes of the item partitions this instance does not own.
    var remoteRowKeys: [String] {
        (0..<repartitionPartitions).filter { itemTasks[$0] == nil }.map { keys.checkpointEmbeddings(TaskId(stage: .items, partition: $0)) }
    }

    /// The epoch of `items-0` when this instance owns it: the refresh leader
    /// (`SharedVectorSet`), which alone runs mid-run refreshes for the group.
    var refreshLeaderEpoch: Int64? {
        let task = SharedVectorSet.leaderTask
        guard itemTasks[task.partition] != nil else { return nil }
        return epochs[task]
    }

    /// The group's positives, estimated from this instance's item tasks
    /// (the items are spread evenly over the partitions by hash).
    var estimatedGroupPositives: Int {
        let owned = max(1, itemTasks.count)
        return localPositives * Int(max(1, repartitionPartitions)) / owned
    }

    /// The refresh leader submits a mid-run refresh on a schedule counted in
    /// events (so a fast replay refreshes as often as a slow stream): the
    /// first after `firstRefreshPositives` positives of the group, then
    /// whenever the count doubled, until the gap reaches `refresh_every`
    /// positives. Never waits for it. Other instances load the leader's
    /// published result (`EmbeddingRefresher`).
    func maybeRefreshEmbeddings() {
        guard let refresher else { return }
        let leaderEpoch = refreshLeaderEpoch
        refresher.setLeader(epoch: leaderEpoch)
        for failure in refresher.takeFailures() { logger.warning("embedding refresh: \(failure)") }
        // Marked final (a bounded run's end): the version the markers
        // carry must stay the last published one.
        guard leaderEpoch != nil, finalMarked == nil else { return }
        let positives = estimatedGroupPositives
        let gap = min(topology.embeddings.refreshEvery, max(Self.firstRefreshPositives, positivesAtLastRefresh))
        guard positives - positivesAtLastRefresh >= gap, !refresher.busy, refreshWouldBePublished(refresher) else { return }
        positivesAtLastRefresh = positives
        refresher.submit(.init(local: localSnapshot(), remoteKeys: remoteRowKeys, cutoff: nil, final: false))
    }

    static let firstRefreshPositives = 2_000

    /// Whether a refresh submitted now could be published when it completes:
    /// the previous result is published (a newer one would supersede it
    /// unpublished) and the `publish_interval` since the last switch has
    /// passed (the next sync after it completes switches to it). A refresh
    /// that is never published is wasted work: on the 3 M-event benchmark
    /// 4 of 6 were (each a snapshot copy on this thread, a refresh on the
    /// refresher's, and a vector set written to Redis for the followers).
    /// The schedule in events still decides when one is due.
    func refreshWouldBePublished(_ refresher: EmbeddingRefresher) -> Bool {
        guard switchIsDue(nowMs: clockNowMs()) else { return false }
        return refresher.latest.version == (publishedVectors?.version ?? 0)
    }

    /// Starts the final refresh of a bounded run before the final checkpoint
    /// when this instance owns every item partition: all rows are in memory,
    /// so the refresh needs no other instance's checkpoint and runs (on the
    /// refresher's threads) while this thread and Redis write the
    /// checkpoint. `finalEmbeddingRefresh` then marks the partitions and
    /// waits for the result. Its version is the one the markers would agree
    /// on: the last refresh's + 1.
    func startFinalEmbeddingRefreshIfEveryRowIsLocal() {
        guard let refresher, !itemTasks.isEmpty, remoteRowKeys.isEmpty else { return }
        refresher.waitUntilIdle()
        let base = refresher.latest.version
        finalRefreshBaseVersion = base
        refresher.submit(.init(local: localSnapshot(), remoteKeys: [], cutoff: nil, final: true, version: base + 1))
    }

    /// End of a bounded run: every item partition's final rows take part.
    /// Marks this instance's item partitions final (after their final
    /// checkpoint), waits until every partition is marked (other instances),
    /// then refreshes from the seeded basis and waits for the result, which
    /// the caller's last flush publishes. Every instance computes the same
    /// vectors; the version is agreed through the marker of partition 0,
    /// which its owner (the refresh leader, done with mid-run refreshes) writes
    /// as its last published version: the final one is that + 1 everywhere.
    /// When `startFinalEmbeddingRefreshIfEveryRowIsLocal` already started the
    /// refresh, only marks and waits.
    func finalEmbeddingRefresh() {
        guard let refresher else { return }
        let startedEarly = finalRefreshBaseVersion
        let finalKey = keys.embeddingFinal
        if !itemTasks.isEmpty && finalMarked != Set(itemTasks.keys) {
            if startedEarly == nil { refresher.waitUntilIdle() }
            markItemPartitionsFinal(lastVersion: startedEarly ?? refresher.latest.version)
        }
        if startedEarly == nil {
            var finalVersion: Int64?
            // After the loop's wait (`awaitsGroupsFinalRows`), one look.
            let look = awaitHashFields(finalKey, itemPartitionFields,
                                       waitMs: finalMarked == nil ? topology.embeddings.finalWaitMs : 0)
            if look.missing.isEmpty {
                finalVersion = look.values[String(SharedVectorSet.leaderTask.partition)]
                    .map { String(decoding: $0, as: UTF8.self) }
                    .flatMap { $0.hasPrefix("v") ? Int64($0.dropFirst()) : nil }.map { $0 + 1 }
            } else {
                // Still unmarked after the wait (a member that neither
                // finished nor left in time): the refresh below has their
                // last checkpoints' rows at best. Say so, and fail the run.
                let unmarked = look.missing.compactMap { Int32($0) }
                finalRefreshMissing = unmarked
                logger.error("the final embedding refresh runs without the final rows of item partitions \(unmarked) (not marked final within embeddings.final_wait: their owners stopped before the end); their items' and their users' vectors may be missing or partial: run the bounded run of this group again to repair them")
            }
            refresher.waitUntilIdle()
            refresher.submit(.init(local: localSnapshot(), remoteKeys: remoteRowKeys, cutoff: nil, final: true,
                                   version: finalVersion))
        }
        refresher.waitUntilComputed()
        let (seconds, items) = refresher.lastRefresh
        logger.info("final embedding refresh", metadata: ["items": "\(items)", "seconds": "\(seconds)",
                                                          "overlapped_checkpoint": "\(startedEarly != nil)"])
    }

    /// Marks this instance's item partitions final (after their final
    /// checkpoint); partition 0's marker carries the last published version.
    /// Returns false when Redis did not take the markers.
    @discardableResult
    func markItemPartitionsFinal(lastVersion: Int64) -> Bool {
        do {
            try setHashFields(keys.embeddingFinal, itemTasks.keys.sorted().map { p in
                (String(p), p == SharedVectorSet.leaderTask.partition ? "v\(lastVersion)" : "1")
            })
            finalMarked = Set(itemTasks.keys)
            return true
        } catch {
            logger.warning("embedding final marker: \(error)")
            return false
        }
    }

    /// The fields of `freshet:<group>:emb:final`: every item partition.
    var itemPartitionFields: [String] { (0..<repartitionPartitions).map { String($0) } }

    /// Sets `fields` (name, value) of the hash `key` in one HSET; nothing when
    /// there are none (an HSET without fields is an error).
    func setHashFields(_ key: String, _ fields: [(name: String, value: String)]) throws {
        guard !fields.isEmpty else { return }
        var command = RedisCommand(arguments: [Array("HSET".utf8), Array(key.utf8)])
        for field in fields {
            command.append(field.name)
            command.append(field.value)
        }
        var pipeline = RedisPipeline()
        pipeline.add(command)
        for reply in try controlExecute(pipeline) { _ = try reply.checked(context: "HSET \(key)") }
    }

    /// Reads the hash `key` every 50 ms until it holds every one of `fields`
    /// or `waitMs` has passed (0: one look). `missing`: the fields absent at
    /// the last read (all of them when none succeeded); a failed read ends
    /// the wait (`readFailed`). The end of a bounded run waits this way for
    /// the group's final markers and final-vector reports.
    func awaitHashFields(_ key: String, _ fields: [String], waitMs: Int64)
        -> (missing: [String], values: [String: [UInt8]], readFailed: Bool) {
        var missing = fields
        let deadline = Date().addingTimeInterval(Double(waitMs) / 1000)
        while true {
            guard let read = try? hashGetAll(key) else { return (missing, [:], true) }
            missing = fields.filter { read[$0] == nil }
            if missing.isEmpty || Date() >= deadline { return (missing, read, false) }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// A bounded run's end with embeddings on and item partitions owned
    /// elsewhere: true while the loop must go on, until every item partition
    /// is marked final or `embeddings.final_wait` has passed. Meanwhile this
    /// instance's own tasks are checkpointed and marked, and it stays in the
    /// group and polls: the partitions of an instance that stopped before
    /// marking its own (killed at the very end) come here through the group,
    /// are finished and marked, and the final refresh has every partition's
    /// final rows. (Waiting inside the stop instead, the survivors took
    /// nothing over: the refresh lacked those rows; a breaker's finding.)
    func awaitsGroupsFinalRows(nowMs: Int64) -> Bool {
        guard let refresher, !remoteRowKeys.isEmpty else { return false }
        if finalMarked != Set(itemTasks.keys) {
            flushFeatures(nowMs: nowMs)
            checkpointAndCommit(tasks: allTaskIds, nowMs: nowMs)
            let itemTaskIds = itemTasks.keys.map { TaskId(stage: .items, partition: $0) }
            // Only rows their checkpoint holds may be marked final; try again next turn.
            guard checkpointer.uncheckpointedTasks.isDisjoint(with: itemTaskIds) else { return true }
            refresher.waitUntilIdle()
            guard markItemPartitionsFinal(lastVersion: refresher.latest.version) else { return true }
            groupEndDeadlineMs = nowMs + topology.embeddings.finalWaitMs
        }
        let look = awaitHashFields(keys.embeddingFinal, itemPartitionFields, waitMs: 0)
        if look.readFailed || look.missing.isEmpty { return false }
        return nowMs < groupEndDeadlineMs
    }

    /// The tasks that write final vectors: every item partition, and the
    /// `interactions` partitions when they keep the users (input keyed by user).
    var finalVectorWriters: [String] {
        (0..<repartitionPartitions).map { TaskId(stage: .items, partition: $0).description }
            + (topology.sources.keyedByUser
                ? (0..<interactionPartitions).map { TaskId(stage: .interactions, partition: $0).description } : [])
    }

    /// After this instance's final vectors are written (the writer drained):
    /// reports its tasks' in `freshet:<group>:emb:published` and waits up to
    /// `embeddings.final_wait` for every writer task's report. A member
    /// stopped after marking its partitions final but before writing its
    /// vectors (killed in the final refresh, say) leaves its items and users
    /// with the old vectors or none; nothing else would tell (a breaker's
    /// finding), so the run fails, naming those tasks.
    /// `mine`: this instance's tasks that wrote final vectors
    /// (`ownFinalVectorWriters`, taken before leaving the group drops them).
    func confirmFinalPublication(mine: [String]) {
        do {
            try setHashFields(keys.embeddingPublished, mine.sorted().map { ($0, "1") })
        } catch {
            logger.warning("embedding publication marker: \(error)")
        }
        let look = awaitHashFields(keys.embeddingPublished, finalVectorWriters, waitMs: topology.embeddings.finalWaitMs)
        guard !look.missing.isEmpty else { return }
        finalPublicationMissing = look.missing
        logger.error("the final vectors of \(look.missing) were not reported written within embeddings.final_wait (their owner stopped after the final refresh began): those items and users keep older vectors or none; run the bounded run of this group again")
    }

    /// This instance's tasks that write final vectors.
    var ownFinalVectorWriters: [String] {
        itemTasks.keys.map { TaskId(stage: .items, partition: $0).description }
            + sourceTasks.values.filter { $0.userEmbeddings != nil }.map(\.id.description)
    }

    /// What the end of a bounded run recorded for a task goes when a new
    /// owner starts it (a new run): an item partition's final marker and the
    /// task's report of its final vectors, in one round trip.
    func clearEndOfRunMarks(_ id: TaskId) {
        var pipeline = RedisPipeline()
        if id.stage == .items {
            pipeline.add(RedisCommand(arguments: [Array("HDEL".utf8), Array(keys.embeddingFinal.utf8),
                                                  Array(String(id.partition).utf8)]))
        }
        pipeline.add(RedisCommand(arguments: [Array("HDEL".utf8), Array(keys.embeddingPublished.utf8),
                                              Array(id.description.utf8)]))
        _ = try? controlExecute(pipeline)
    }
}
