import Foundation
import FreshetProcess
import FreshetRuntime
import ServiceLifecycle

// The long-running pieces of `freshet run` as swift-service-lifecycle
// services in one `ServiceGroup`. The group shuts services down in reverse
// order of registration, waiting for each: register the local broker and
// Redis first, the processor next, the synthetic producer last, and a stop
// request (SIGTERM, SIGINT, or the processor finishing) stops the producer,
// then the processor (flush, checkpoint, commit, leave), then the services.
//
// The processor, the producer's wait and the services' `waitpid` block in C
// calls, so each runs on a thread of its own (`onThread`), never on Swift's
// cooperative pool.

/// Runs `body` on a new thread and resumes when it returns or throws.
///
/// `body` (and whatever it captured, e.g. the processor) is released on that
/// thread *before* the caller resumes: otherwise the thread's own teardown
/// could drop the last reference later, running deinits (freeing C handles)
/// on a thread that races the process's exit.
func onThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    let handoff = BodyHandoff(body)
    return try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            let result = handoff.run()
            continuation.resume(with: result)
        }
        thread.name = name
        thread.start()
    }
}

/// Holds `onThread`'s body until it runs once, then lets go of it.
private final class BodyHandoff<T: Sendable>: @unchecked Sendable {
    // Taken exactly once, by the thread `onThread` starts; guarded by `lock`.
    private let lock = NSLock()
    private var body: (@Sendable () throws -> T)?

    init(_ body: @escaping @Sendable () throws -> T) { self.body = body }

    /// Runs the body and drops it before returning its outcome.
    func run() -> Result<T, Error> {
        lock.lock()
        let taken = body
        body = nil
        lock.unlock()
        guard let taken else { return .failure(CancellationError()) }
        return Result { try taken() }
    }
}

/// The processor: runs until stopped or, in a bounded run, until done.
/// Graceful shutdown asks it to finish the in-flight batch, checkpoint, commit and leave.
struct ProcessorService: Service {
    let processor: StreamProcessor

    func run() async throws {
        let processor = self.processor
        try await withGracefulShutdownHandler {
            try await onThread("freshet-processor") { try processor.run() }
        } onGracefulShutdown: {
            processor.requestStop()
        }
    }
}

/// The embedded default's synthetic producer: produces until shutdown, then
/// flushes what it produced (before the processor and the broker stop).
struct DemoProducerService: Service {
    let demo: DemoProducer

    func run() async throws {
        demo.start()
        try? await gracefulShutdown()
        let demo = self.demo
        try await onThread("freshet-demo-stop") { demo.stop() }
    }
}

/// The embedded default's local broker and Redis, started before the group
/// (the processor needs their addresses); stopped when the group shuts down,
/// after every service registered later.
struct LocalServicesService: Service {
    let local: LocalServices

    func run() async throws {
        try? await gracefulShutdown()
        let local = self.local
        try await onThread("freshet-local-stop") { local.stopAll() }
    }
}
