import Dispatch
import Foundation

/// SIGTERM and SIGINT: the first asks for a graceful stop, a second exits at once.
final class SignalHandling: @unchecked Sendable {
    // Mutated only on `queue`.
    private var received = 0
    private var sources: [DispatchSourceSignal] = []
    private let queue = DispatchQueue(label: "freshet.signals")
    private let onFirst: @Sendable () -> Void

    init(onFirst: @escaping @Sendable () -> Void) {
        self.onFirst = onFirst
    }

    func install() {
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler { [self] in
                self.received += 1
                if self.received == 1 {
                    self.onFirst()
                } else {
                    FileHandle.standardError.write(Data("freshet: second signal, exiting now\n".utf8))
                    // `_exit`, not `exit`: the processing, writer and librdkafka
                    // threads are still running, and exit's handlers (library
                    // destructors) would free state under them. Nothing here
                    // needs flushing: logs go to stderr unbuffered.
                    _exit(130)
                }
            }
            source.resume()
            sources.append(source)
        }
    }
}
