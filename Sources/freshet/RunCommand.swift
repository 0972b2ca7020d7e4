import ArgumentParser
import Foundation
import FreshetProcess
import FreshetKafka
import FreshetRedis
import FreshetRuntime
import Logging
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the processor: Kafka events in, features in Redis.",
        discussion: """
        With neither --brokers nor --redis (nor their environment variables), starts a local \
        Tansu broker and Redis on loopback and a synthetic event producer, so a first run \
        shows features flowing (read them with `freshet features`).
        """
    )

    @Option(help: "Topology file (default: topologies/recsys.yaml when it exists, else the built-in defaults).")
    var topology = ShippedTopology.path

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Consumer group id; also scopes the repartition topics and checkpoints.")
    var group = "freshet"

    @Flag(help: "Bounded run: stop once every assigned partition reached the end offset it had at start, after writing and committing everything.")
    var stopAtEnd = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "Admin HTTP port (/metrics, /healthz, /readyz); overrides the topology; -1 disables (write it --admin-port=-1).")
    var adminPort: Int?

    /// 200/s: the local Tansu broker (memory storage) spends CPU on every fetch
    /// in proportion to its log, so a steady stream of thousands per second
    /// saturates it within minutes and the demo would fall behind for ever.
    @Option(help: "Synthetic events per second in the embedded default (0: none).")
    var demoRate = 200

    @Option(help: "Watermark alignment: pause a source partition whose watermark runs more than this ahead of the group's slowest (a duration like 10m, or off); overrides event_time.max_drift (default: the join window with the examples topic on, else off).")
    var maxDrift: String?

    func validate() throws {
        _ = try parseLogLevel(logLevel)
        guard demoRate >= 0 else { throw ValidationError("--demo-rate must be 0 or more") }
        // As the topology's admin.port (an out-of-range port crashed the port conversion).
        if let adminPort, adminPort != -1 && !(0...65_535).contains(adminPort) {
            throw ValidationError("--admin-port \(adminPort): expected 0 to 65535, or -1 to disable the admin server")
        }
        if let maxDrift, parseMaxDrift(maxDrift) == nil {
            throw ValidationError("--max-drift \(maxDrift): expected a duration like 10m or 1h, or off")
        }
    }

    func run() async throws {
        let logger = Self.makeLogger(level: try parseLogLevel(logLevel))
        var topologyValue: Topology
        do {
            let loaded = try ShippedTopology.load(ShippedTopology.named(topology))
            if loaded.builtIn {
                logger.notice("no \(topology) here: using the built-in defaults (the values topologies/recsys.yaml documents)")
            }
            topologyValue = loaded.topology
        } catch {
            throw ValidationError(error.description)
        }
        if let adminPort { topologyValue.admin.port = adminPort }
        if let maxDrift, let drift = parseMaxDrift(maxDrift) { topologyValue.eventTime.maxDriftMs = drift }

        if let warning = LibrdkafkaVersion.tooOldWarning { logger.warning("\(warning)") }

        let local = LocalServices()
        defer { local.stopAll() }  // after a failed start-up; the group stops them otherwise
        let embedded = connection.givenBrokers == nil && connection.givenRedis == nil
        if embedded {
            // Overridable so that tests can run the embedded default on free ports.
            let environment = ProcessInfo.processInfo.environment
            let directory = environment["FRESHET_LOCAL_DIR"] ?? ".freshet/run"
            let brokerPort = ConnectionOptions.localBrokerPort
            let redisPort = ConnectionOptions.localRedisPort
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            do {
                try local.startBroker(port: brokerPort, directory: directory)
                try local.startRedis(port: redisPort, directory: directory)
            } catch {
                throw ValidationError("\(error)")
            }
            for note in local.notes { logger.notice("embedded default: \(note)") }
        }

        let target: RedisTarget
        do {
            // One Redis (redis://, unix://) or a cluster (redis+cluster://host:port,...).
            target = try RedisTarget(url: local.redisURL ?? connection.resolvedRedis)
        } catch {
            throw ValidationError("--redis: \(error)")
        }
        let options = ProcessorOptions(brokers: local.brokers ?? connection.resolvedBrokers, redisTarget: target, group: group,
                                       stopAtEnd: stopAtEnd, kafkaProperties: Self.kafkaPropertiesFromEnvironment())
        let processor = StreamProcessor(topology: topologyValue, options: options, logger: logger)
        // Stop order is the reverse of registration (RunServices.swift): the
        // synthetic producer, then the processor (flush, checkpoint, commit,
        // leave), then the local broker and Redis, which never see the
        // terminal's signal (process groups of their own). The processor
        // finishing by itself (a bounded run, or an error) stops the rest too.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if embedded {
            services.append(.init(service: LocalServicesService(local: local), serviceName: "local-services"))
        }
        services.append(.init(service: ProcessorService(processor: processor),
                              successTerminationBehavior: .gracefullyShutdownGroup,
                              failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "processor"))
        if embedded && demoRate > 0 {
            logger.notice("embedded default: producing \(demoRate) synthetic events/s into \(topologyValue.sources.interactions) and \(topologyValue.sources.impressions); try `freshet features trending`")
            let demo = DemoProducer(brokers: options.brokers, topology: topologyValue, rate: demoRate, logger: logger)
            services.append(.init(service: DemoProducerService(demo: demo), serviceName: "demo-producer"))
        }
        var configuration = ServiceGroupConfiguration(services: services, logger: logger)
        configuration.gracefulShutdownSignals = [.sigterm, .sigint]
        // The group turns the first signal into a graceful shutdown; this says
        // so, and makes a second signal exit at once (a stop stuck on a
        // frozen broker or Redis would otherwise wait).
        let signals = SignalHandling(onFirst: {
            logger.notice("stopping: finishing the in-flight batch, checkpointing, committing (signal again to exit at once)")
        })
        signals.install()

        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch {
            logger.critical("processor stopped on an error: \(error)")
            throw ExitCode(1)
        }
        if stopAtEnd && !processor.boundedRunEnded {
            // Everything processed was written and committed; a script must
            // still be able to tell an interrupted batch from a finished one.
            logger.error("bounded run stopped before the end of its input (a signal); what it processed is written and committed, and a new run continues from there")
            throw ExitCode(Self.boundedRunInterrupted)
        }
    }

    /// Exit status of a bounded run stopped (gracefully) before its end.
    static let boundedRunInterrupted: Int32 = 3

    /// librdkafka properties from `FRESHET_KAFKA_<PROPERTY>` variables, dots as
    /// underscores: FRESHET_KAFKA_SASL_PASSWORD=... sets sasl.password (never logged).
    static func kafkaPropertiesFromEnvironment() -> [String: String] {
        var properties: [String: String] = [:]
        for (name, value) in ProcessInfo.processInfo.environment where name.hasPrefix("FRESHET_KAFKA_") {
            let key = name.dropFirst("FRESHET_KAFKA_".count).lowercased().replacingOccurrences(of: "_", with: ".")
            properties[key] = value
        }
        return properties
    }

    static func makeLogger(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "freshet")
    }
}
