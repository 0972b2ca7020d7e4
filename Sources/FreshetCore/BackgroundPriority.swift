#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scheduling priority for threads whose work must not take the cores from
/// the feature path (the embeddings' co-occurrence counting and spectral
/// refresh).
///
/// On Linux a thread has its own nice value (`setpriority(2)`, NOTES). Under CFS a runnable thread's share of a contended core is its weight
/// over the sum of weights: nice 0 weighs 1024, nice 10 weighs 110
/// (kernel/sched/core.c, `sched_prio_to_weight`), so while the processing
/// loop wants a core, a nice-10 thread gets about a tenth of it; on idle cores
/// it runs at full speed. Raising a nice value needs no privilege; it cannot
/// be lowered again without `CAP_SYS_NICE`, so call it only on a thread the
/// caller created for that work.
package enum BackgroundPriority {
    /// The nice value of background threads.
    package static let niceValue: Int32 = 10

    /// Lowers the calling thread's priority to `niceValue` (Linux; elsewhere
    /// nothing). Returns false when the system refused (the thread then keeps
    /// running at its old priority, which is only slower for the feature path).
    @discardableResult
    package static func lowerCurrentThread() -> Bool {
        #if os(Linux)
        // Who 0 is the calling thread: on Linux the nice value is per thread
        // (setpriority(2), NOTES), whatever POSIX says of processes.
        return setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceValue) == 0
        #else
        return false
        #endif
    }

    /// The calling thread's nice value (Linux; elsewhere nil).
    package static func currentThreadNice() -> Int32? {
        #if os(Linux)
        errno = 0
        let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        return errno == 0 ? value : nil
        #else
        return nil
        #endif
    }
}
