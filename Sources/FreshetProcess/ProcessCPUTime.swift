import Foundation

/// CPU time of another process, read from Linux's `/proc/<pid>/stat`.
package enum ProcessCPUTime {
    /// User + system CPU seconds of `pid` (fields 14 and 15 of
    /// `/proc/<pid>/stat`, in clock ticks, see proc(5)); nil when the file is
    /// missing (the process is gone, or not Linux) or malformed.
    package static func seconds(pid: pid_t) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return parse(stat: text)
    }

    /// Parses a `/proc/<pid>/stat` line. The command name (field 2) is in
    /// parentheses and may hold spaces and parentheses itself, so fields are
    /// counted from the last ")".
    package static func parse(stat text: String, ticksPerSecond: Double = Double(sysconf(Int32(_SC_CLK_TCK)))) -> Double? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        // After ")": field 3 (state) is the first; utime is field 14, stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count >= 13, let user = Double(fields[11]), let system = Double(fields[12]), ticksPerSecond > 0 else { return nil }
        return (user + system) / ticksPerSecond
    }
}
