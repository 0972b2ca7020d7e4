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
    /// Signalled when the producing thread has flushed and ended.
    private let finished = DispatchSemaphore(value: 0)

    init(brokers: String, topology: Topology, rate: Int, logger: Logger) {
        self.brokers = brokers
        self.topology = topology
        self.rate = rate
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in
            defer { finished.signal() }
            // Give the processor a moment to create the topics.
            Thread.sleep(forTimeInterval: 2)
            if stopFlag.isSet { return }
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

    /// Asks the producer to stop (safe from any thread, a signal handler's too).
    func requestStop() { stopFlag.set() }

    /// Stops producing and waits (up to `timeout` seconds) until what was
    /// produced is flushed: call before the local broker is stopped.
    func stop(timeout: Double = 15) {
        stopFlag.set()
        guard thread != nil else { return }
        _ = finished.wait(timeout: .now() + timeout)
        thread = nil
    }
}
