import CRdKafka

/// librdkafka client configuration: a bag of raw properties passed through to
/// `rd_kafka_conf_set` unchanged (any librdkafka property works, including
/// `security.protocol`, `sasl.*`, `ssl.*`).
///
/// The clients add their own defaults (see `KafkaConsumer`, `KafkaProducer`)
/// before these properties are applied, so a property set here overrides a
/// default unless the client documents it as forced.
///
/// `description` redacts secret values (see `isSecret(_:)`); never log
/// `properties` directly.
package struct KafkaConfig: Sendable, CustomStringConvertible {
    package var properties: [String: String]

    /// - Parameters:
    ///   - bootstrapServers: `host:port[,host:port...]` → `bootstrap.servers`.
    ///   - properties: additional raw librdkafka properties.
    package init(bootstrapServers: String, properties: [String: String] = [:]) {
        self.properties = properties
        self.properties["bootstrap.servers"] = bootstrapServers
    }

    package init(properties: [String: String]) {
        self.properties = properties
    }

    package var bootstrapServers: String? {
        get { properties["bootstrap.servers"] }
        set { properties["bootstrap.servers"] = newValue }
    }

    /// `client.id` (shown in broker logs and metrics).
    package var clientId: String? {
        get { properties["client.id"] }
        set { properties["client.id"] = newValue }
    }

    package subscript(key: String) -> String? {
        get { properties[key] }
        set { properties[key] = newValue }
    }

    /// Returns a copy with `key` set to `value`.
    package func with(_ key: String, _ value: String) -> KafkaConfig {
        var copy = self
        copy.properties[key] = value
        return copy
    }

    /// Configures SASL/PLAIN or SCRAM over TLS (or plaintext when `tls` is false).
    package mutating func setSASL(mechanism: String, username: String, password: String, tls: Bool = true) {
        properties["security.protocol"] = tls ? "SASL_SSL" : "SASL_PLAINTEXT"
        properties["sasl.mechanisms"] = mechanism
        properties["sasl.username"] = username
        properties["sasl.password"] = password
    }

    /// Whether a property holds a secret that must never be logged.
    package static func isSecret(_ key: String) -> Bool {
        let k = key.lowercased()
        return k.contains("password") || k.contains("secret") || k.contains("key.pem")
            || k.contains("private") || k.contains("oauthbearer.config") || k.contains("token")
    }

    /// Properties with secret values replaced by `[redacted]`, sorted by key.
    package var redactedProperties: [(key: String, value: String)] {
        properties.sorted { $0.key < $1.key }.map { (key: $0.key, value: KafkaConfig.isSecret($0.key) ? "[redacted]" : $0.value) }
    }

    package var description: String {
        "KafkaConfig(" + redactedProperties.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + ")"
    }

    /// Builds an `rd_kafka_conf_t` from `defaults` overlaid with `properties`
    /// overlaid with `forced`. The caller owns the result (pass it to
    /// `rd_kafka_new`, which takes ownership on success, or destroy it).
    func makeConf(defaults: [String: String], forced: [String: String], context: String) throws(KafkaError) -> OpaquePointer {
        var merged = defaults
        for (k, v) in properties { merged[k] = v }
        for (k, v) in forced { merged[k] = v }
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(code: KafkaError.Code.fatal, message: "rd_kafka_conf_new failed", context: context)
        }
        var errbuf = [CChar](repeating: 0, count: 512)
        for (k, v) in merged.sorted(by: { $0.key < $1.key }) {
            let res = rd_kafka_conf_set(conf, k, v, &errbuf, errbuf.count)
            if res != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let msg = CInterop.errorString(errbuf)
                let shown = KafkaConfig.isSecret(k) ? "[redacted]" : v
                throw KafkaError(code: KafkaError.Code.invalidArgument, name: "_INVALID_ARG",
                                 message: "\(k)=\(shown): \(msg)", context: context)
            }
        }
        return conf
    }
}
