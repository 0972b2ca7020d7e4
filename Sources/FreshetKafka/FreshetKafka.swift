// FreshetKafka: the only module that calls rd_kafka_*.
//
// Public surface
// - `KafkaConfig`: raw librdkafka properties (redacted in descriptions).
// - `KafkaConsumer`: group member, cooperative-sticky, manual offsets,
//   `RebalanceListener` callbacks as the checkpoint boundary, batch polling
//   (`poll(maxRecords:timeoutMs:)` → `ConsumerPoll`, allocation-free
//   `poll(into: RecordBatch, ...)`, or copy-free `poll(maxRecords:timeoutMs:each:)`
//   handing out views into librdkafka's messages: the processing loop's),
//   partition-EOF notices, end offsets.
// - `KafkaProducer`: idempotent, murmur2 partitioning (`partition(forKey:...)`
//   gives the same answer as librdkafka), delivery failures never silent.
// - `KafkaAdmin`: CreateTopics (idempotent), metadata.
// - `KafkaError`, `TopicPartition`, `KafkaOffset`, `LibrdkafkaVersion`.
//
// Threading
// Every call that talks to the broker blocks its thread (poll, commit with
// synchronous: true, committedOffsets, flush, close, admin calls, metadata,
// probeEndOffsets). The runtime calls them from its own dedicated threads,
// never from Swift's cooperative pool. librdkafka handles are thread-safe, so
// the wrappers are `@unchecked Sendable`; the consumer's `poll`/`close`
// serialise on a lock and run rebalance callbacks on the polling thread.
//
// librdkafka version
// We compile against Debian's 2.0.2 headers but must run with a 2.1.1+
// library (2.0.2 cannot parse current brokers' ApiVersions replies, librdkafka
// issue 4278): `source scripts/env.sh` puts Confluent's build first on
// LD_LIBRARY_PATH. Check `LibrdkafkaVersion.isAtLeast2_1_1` at start-up and
// warn/refuse. Symbols newer than 2.0.2 (group generation id) are looked up
// at run time with dlsym.
//
// End offsets and `--stop-at-end` on Tansu (the test broker)
// Tansu answers ListOffsets(latest) with "base offset of the newest batch + 1"
// rather than the log end offset. Everything built on ListOffsets is wrong
// there: OFFSET_END, rd_kafka_query_watermark_offsets, "seek to end", lag
// computed from it. Fetch responses carry the correct high watermark, and
// librdkafka caches it (rd_kafka_get_watermark_offsets) and reports it in
// partition-EOF events. So:
// 1. At start-up, `KafkaConsumer.probeEndOffsets(config:topics:)` for all
//    partitions of the input topics: a short-lived, group-less (throwaway
//    group.id, never joined) consumer assigns each partition at the
//    beginning, polls until one Fetch response per partition has come back,
//    and returns the cached high watermarks. Empty partitions give 0.
// 2. A task is finished when the next offset it would read (last processed
//    offset + 1, or the start offset if it read nothing) is >= that end
//    offset; an empty or already-consumed partition is finished at once.
//    A `PartitionEndEvent` whose offset is >= the probed end also means
//    finished (EOF events fire every time the consumer catches up, so the
//    probed value, not the first EOF, is the bound: records produced after
//    start-up are not waited for).
// 3. Stop when every partition the instance owns is finished, after
//    flushing sinks and committing. Partitions that move in later are
//    compared against the same start-up map.
// `cachedHighWatermark(_:)` on the main consumer is also correct (after the
// first Fetch for that partition) and is what lag metrics should use.
//
// Gotchas found against Tansu 0.6 and librdkafka 2.16
// - rd_kafka_assign() without group.id fails with _UNKNOWN_GROUP, even for
//   assign-only consumers: the probe sets a throwaway group id.
// - Without session.timeout.ms ~6000 the first group join waits ~23 s.
// - Tansu first answers JoinGroup with MEMBER_ID_REQUIRED, then holds the
//   real JoinGroup ~3 s, so the first assignment arrives ~3 s after subscribe;
//   a member joining or leaving an existing group takes a few seconds more
//   (cooperative rebalancing needs two rounds). Tests budget 30-40 s.
// - A partition revoked and re-assigned within one settle phase can show up
//   more than once in the callbacks.
// - Producing to a partition that does not exist with a fresh producer is
//   accepted by produce() (metadata not known yet) and fails in the delivery
//   report with _UNKNOWN_PARTITION; `flush` then throws until the errors are
//   taken with `takeDeliveryErrors()`.
// - Tansu returns no topic configs; `NewTopic.configs` are sent but ignored.
