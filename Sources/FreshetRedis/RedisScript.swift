/// A Lua script, named by the SHA-1 of its source as Redis names it.
///
/// Run it with `RedisConnection.evalScript` (EVALSHA, falling back to
/// SCRIPT LOAD on `NOSCRIPT`), or in a pipeline with `.evalsha(script, ...)`
/// after loading it once per connection with `RedisConnection.loadScript`
/// (`ReconnectingRedis.registerScript` does that after every reconnect).
package struct RedisScript: Sendable, Equatable, Hashable {
    package let source: String
    /// 40 lower-case hex digits, equal to what `SCRIPT LOAD` returns.
    package let sha1: String

    package init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hex(source)
    }

    package init(source: String) {
        self.init(source)
    }
}
