// FreshetRedis — the only module that calls hiredis (`redis*`).
//
// Overview
// - `RedisEndpoint`: where to connect, parsed from `redis://`, `rediss://`,
//   `unix://` URLs; `description` redacts the password.
// - `RedisConnection`: one blocking hiredis connection, owned by one thread.
//   Single commands throw server errors; pipelines (`RedisPipeline`,
//   `execute`) return them as `.error` replies in the failed command's slot.
// - `RedisCommand` / `RedisPipeline`: commands held as RESP bytes, so
//   building a command is one growing byte array and adding it to a pipeline
//   one copy. Binary-safe throughout (embedding blobs, zero bytes).
// - `RedisScript`: Lua source named by its SHA-1 (computed in Swift, `SHA1`).
// - `ReconnectingRedis`: reconnects with exponential back-off (50 ms doubling
//   to 2 s, until `shouldStop`) and resends whole pipelines; callers send only
//   idempotent absolute writes, so resending converges. Reloads registered
//   scripts after every reconnect.
// - `RedisBenchmark.run`: pipelined HSET throughput on one connection
//   (for `freshet bench redis`).
//
// Threading: nothing here is `Sendable` except values (endpoint, command,
// pipeline, reply, error, script). Connections block the calling thread and
// must live on a dedicated thread (the runtime's Redis writer), never on
// Swift's cooperative pool.
//
// Memory: every `RedisConnection` frees its hiredis context (`redisFree`) in
// `close()` or `deinit`; replies are copied into `RedisReply` and the hiredis
// reply tree freed (`freeReplyObject`) at once.
//
// TLS: not supported. Debian bookworm ships hiredis 0.14.1, which has no SSL
// support (hiredis_ssl arrived in 1.0). `rediss://` URLs parse (so configs
// are portable) but connecting throws `RedisError.Kind.unsupported`, as does
// creating a `ReconnectingRedis`. Use a TLS tunnel (stunnel, a sidecar) and a
// `redis://` URL to it.
//
// SIGPIPE: hiredis 0.14 writes with write(2); the first connection sets
// SIGPIPE to "ignore" if it still has the default disposition.
