#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time, for the benchmarks: on a shared machine, wall time also counts
/// the time other processes held the cores.
package enum CPUClock {
    /// Seconds of CPU the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
    @inline(__always)
    package static func threadSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// User + system seconds of the whole process, every thread (`getrusage`).
    package static func processSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
