import Foundation
import FreshetRuntime
import FreshetWorkload
import Logging

/// The embedded default's synthetic traffic: events stamped with the current
/// time, at a steady rate, on a thread of its own, until stopped.
final class DemoProducer: @unchecked Sendable {
    // `stopFlag` is the only state shared across threads.
    private let stopFlag = StopFlag()
    private let brokers: String
    private let topology: Topology
    private let rate: Int
    private let logger: Logger
    private var thread: Thread?

    init(brokers: String, topology: Topology, rate: Int, logger: Logger) {
        self.brokers = brokers
        self.topology = topology
        self.rate = rate
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in
            // Give the processor a moment to create the topics.
            Thread.sleep(forTimeInterval: 2)
            do {
                let publisher = try EventPublisher(brokers: brokers, interactionsTopic: topology.sources.interactions,
                                                   impressionsTopic: topology.sources.impressions, rate: rate, randomKeys: false)
                let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
                let day: Int64 = 86_400_000
                let config = SyntheticConfig(seed: UInt64(nowMs), users: 10_000, items: 2_000, startMs: nowMs,
                                             spanMs: day, nowMs: nowMs + day)
                try publisher.publish(SyntheticStream(config: config, count: rate * 86_400).lazy.map { ($0.topic == .impressions, $0.key, $0.json) },
                                      shouldStop: { self.stopFlag.isSet })
            } catch {
                logger.error("demo producer stopped: \(error)")
            }
        }
        thread.name = "freshet-demo-producer"
        self.thread = thread
        thread.start()
    }

    func stop() { stopFlag.set() }
}
