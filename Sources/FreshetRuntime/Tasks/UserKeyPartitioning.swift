import FreshetKafka

/// Watches whether an `interactions` partition read with `keyed_by_user`
/// holds what one partitioner keyed by user id puts there.
///
/// The source task keeps the user features of the users whose records its
/// partition holds, so every record of a user must land in one partition.
/// Each standard partitioner does that on its own (Kafka's Java default and
/// librdkafka's `murmur2_random`: murmur2; librdkafka's default
/// `consistent_random`: CRC-32; Sarama's default and librdkafka's `fnv1a`:
/// FNV-1a), but producers that mix them, or records without a key, split
/// users across partitions, and two tasks then write one user's hash from
/// two partial states (a breaker: 1,995 of 4,486 users wrong after a batch
/// from a librdkafka client with its default partitioner). Nothing in a
/// record says which partitioner placed it; a partition holding, for each
/// of the three, a record it would place elsewhere (or an unkeyed record)
/// is proof that no single one did. A custom partitioner that is none of
/// them is reported too. The conflict is counted once per partition and run.
struct UserKeyPartitioning {
    let partition: Int32
    let partitionCount: Int32
    /// Records murmur2 / CRC-32 / FNV-1a of the key would have put in another partition.
    private(set) var notMurmur2 = 0
    private(set) var notCRC32 = 0
    private(set) var notFNV1a = 0
    private(set) var unkeyed = 0

    init(partition: Int32, partitionCount: Int32) {
        precondition(partitionCount > 0 && partition >= 0 && partition < partitionCount, "a partition of the topic")
        self.partition = partition
        self.partitionCount = partitionCount
    }

    /// True once no single partitioner keyed by the record key explains the records seen.
    var conflict: Bool { unkeyed > 0 || (notMurmur2 > 0 && notCRC32 > 0 && notFNV1a > 0) }

    /// Notes one record's key (nil: none). After a conflict nothing is computed.
    @inline(__always)
    mutating func observe(key: UnsafeRawBufferPointer?) {
        guard !conflict, partitionCount > 1 else { return }
        guard let key else {
            unkeyed += 1
            return
        }
        // Each hash only until it is ruled out once (the first usually decides).
        if notMurmur2 == 0, KafkaProducer.partition(forKey: key, partitionCount: partitionCount) != partition { notMurmur2 += 1 }
        if notCRC32 == 0, KafkaProducer.consistentPartition(forKey: key, partitionCount: partitionCount) != partition {
            notCRC32 += 1
        }
        if notFNV1a == 0, KafkaProducer.fnv1aPartition(forKey: key, partitionCount: partitionCount) != partition {
            notFNV1a += 1
        }
    }

    /// What the operator reads when `conflict` turns true.
    var explanation: String {
        unkeyed > 0
            ? "records without a key: a user's records can land in several partitions, so its features are computed from part of them"
            : "records placed by different partitioners, or by one that is neither murmur2, CRC-32 nor FNV-1a of the key: "
                + "a user's records land in several partitions, so its features are computed from part of them"
    }
}
