/// Where and how to reach a Redis server, parsed from a URL.
///
/// Accepted forms:
/// - `redis://[user:password@]host[:port][/db]` (also `:password@` for the
///   default user; user and password are percent-decoded, so encode `@`, `:`
///   and `/` in them as `%40`, `%3A`, `%2F`)
/// - `rediss://...` (TLS; parsed, but refused at connect time with
///   `.unsupported`: Debian bookworm's hiredis 0.14.1 has no SSL support)
/// - `unix://[user:password@]/path/to/redis.sock[?db=N]`
/// - a `?db=N` query is accepted on every scheme; other query keys are refused.
///
/// IPv6 hosts go in brackets: `redis://[::1]:6379`. The port defaults to 6379,
/// the database to 0. `description` never shows the password (`***`).
package struct RedisEndpoint: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Host name or IP address (empty for Unix sockets).
    package var host: String
    package var port: Int
    /// Path of the Unix domain socket, when connecting through one.
    package var unixSocketPath: String?
    /// ACL user name (Redis 6+); nil for the default user.
    package var username: String?
    package var password: String?
    /// Database index selected after connecting (`SELECT`).
    package var database: Int
    /// Whether the URL asked for TLS (`rediss://`).
    package var tls: Bool

    package static let defaultPort = 6379

    /// Whether this build can speak TLS. hiredis 0.14.1 (Debian bookworm) has no SSL support.
    package static let isTLSSupported = false

    package init(host: String, port: Int = RedisEndpoint.defaultPort, username: String? = nil,
                password: String? = nil, database: Int = 0, tls: Bool = false) {
        self.host = host
        self.port = port
        self.unixSocketPath = nil
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    package init(unixSocketPath: String, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = ""
        self.port = 0
        self.unixSocketPath = unixSocketPath
        self.username = username
        self.password = password
        self.database = database
        self.tls = false
    }

    /// Parses a `redis://`, `rediss://` or `unix://` URL (see the type's documentation).
    /// Throws `.invalidArgument` with the reason and the URL (password redacted).
    package init(url: String) throws(RedisError) {
        try self.init(url: url, expecting: "redis://, rediss:// or unix://")
    }

    /// `init(url:)`, naming `expecting` as the URL forms accepted when the
    /// scheme is missing or unknown (`RedisTarget` also takes `redis+cluster://`).
    package init(url: String, expecting: String) throws(RedisError) {
        func fail(_ reason: String) -> RedisError {
            RedisError(kind: .invalidArgument, message: reason, context: "parsing Redis URL \"\(Self.redactURL(url))\"")
        }

        guard let schemeEnd = Self.schemeSeparator(in: url) else {
            throw fail("missing scheme: expected \(expecting)")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(url[schemeEnd.upperBound...])

        // Query (only db=N).
        var queryDatabase: Int?
        if let question = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: question)...]
            rest = rest[..<question]
            for item in query.split(separator: "&") where !item.isEmpty {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, parts[0] == "db" else {
                    throw fail("unsupported query parameter \"\(parts[0])\": only db=N is accepted")
                }
                guard let db = Int(parts[1]), db >= 0 else {
                    throw fail("database index \"\(parts[1])\" is not a non-negative integer")
                }
                queryDatabase = db
            }
        }

        // User info: everything before the last "@" (passwords may contain "@" when encoded or not).
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard let colon = userInfo.firstIndex(of: ":") else {
                throw fail("credentials without a colon are ambiguous: write user:password@ or :password@")
            }
            let user = try Self.percentDecode(userInfo[..<colon], fail: fail)
            let pass = try Self.percentDecode(userInfo[userInfo.index(after: colon)...], fail: fail)
            username = user.isEmpty ? nil : user
            password = pass
            if username != nil && pass.isEmpty {
                throw fail("user \"\(user)\" has an empty password")
            }
        }

        switch scheme {
        case "unix":
            guard rest.hasPrefix("/"), rest.count > 1 else {
                throw fail("a unix:// URL needs an absolute socket path, e.g. unix:///run/redis.sock")
            }
            self.init(unixSocketPath: String(rest), username: username, password: password,
                      database: queryDatabase ?? 0)
        case "redis", "rediss":
            // host[:port][/db]
            var authority = rest
            var pathDatabase: Int?
            if let slash = rest.firstIndex(of: "/") {
                authority = rest[..<slash]
                let path = rest[rest.index(after: slash)...]
                if !path.isEmpty {
                    guard let db = Int(path), db >= 0 else {
                        throw fail("database index \"\(path)\" is not a non-negative integer")
                    }
                    pathDatabase = db
                }
            }
            var host: Substring
            var portText: Substring?
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else {
                    throw fail("unterminated IPv6 address: missing \"]\"")
                }
                host = authority[authority.index(after: authority.startIndex)..<close]
                let after = authority[authority.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix(":") else { throw fail("unexpected \"\(after)\" after the IPv6 address") }
                    portText = after.dropFirst()
                }
            } else if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            guard !host.isEmpty else { throw fail("missing host") }
            var port = Self.defaultPort
            if let portText {
                guard let parsed = Int(portText), (1...65535).contains(parsed) else {
                    throw fail("port \"\(portText)\" is not a number between 1 and 65535")
                }
                port = parsed
            }
            if let pathDatabase, let queryDatabase, pathDatabase != queryDatabase {
                throw fail("database given twice (/\(pathDatabase) and ?db=\(queryDatabase))")
            }
            self.init(host: String(host), port: port, username: username, password: password,
                      database: pathDatabase ?? queryDatabase ?? 0, tls: scheme == "rediss")
        default:
            throw fail("unsupported scheme \"\(scheme)\": expected \(expecting)")
        }
    }

    /// The endpoint as a URL with the password shown as `***`.
    package var description: String {
        var userInfo = ""
        if password != nil {
            userInfo = "\(username ?? ""):***@"
        } else if let username {
            userInfo = "\(username)@"
        }
        if let unixSocketPath {
            return "unix://\(userInfo)\(unixSocketPath)" + (database != 0 ? "?db=\(database)" : "")
        }
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "\(tls ? "rediss" : "redis")://\(userInfo)\(hostText):\(port)/\(database)"
    }

    /// `url` with anything between "://" and the last "@" after a ":" replaced, for error messages.
    static func redactURL(_ url: String) -> String {
        guard let schemeEnd = Self.schemeSeparator(in: url), let at = url.lastIndex(of: "@"), at > schemeEnd.upperBound else {
            return url
        }
        let userInfo = url[schemeEnd.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else {
            return url[..<schemeEnd.upperBound] + "***" + url[at...]
        }
        return String(url[..<colon]) + ":***" + url[at...]
    }

    /// The range of the first "://" in `url`.
    static func schemeSeparator(in url: String) -> Range<String.Index>? {
        var index = url.startIndex
        while index < url.endIndex {
            if url[index...].hasPrefix("://") {
                return index..<url.index(index, offsetBy: 3)
            }
            index = url.index(after: index)
        }
        return nil
    }

    private static func percentDecode(_ text: Substring, fail: (String) -> RedisError) throws(RedisError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%") {
                guard iterator.count >= 2,
                      let high = hexValue(iterator[iterator.startIndex]),
                      let low = hexValue(iterator[iterator.startIndex + 1]) else {
                    throw fail("bad percent-encoding in credentials")
                }
                bytes.append(high << 4 | low)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
