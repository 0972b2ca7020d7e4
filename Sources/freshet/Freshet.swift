import ArgumentParser
import Foundation

@main
struct Freshet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "freshet",
        abstract: "A stream processor that turns recommender events in Kafka into fresh features in Redis.",
        subcommands: [RunCommand.self, ProduceCommand.self, FeaturesCommand.self, BenchCommand.self, EvalCommand.self]
    )

    /// ArgumentParser's entry point, after capping glibc's malloc arenas.
    static func main() async {
        limitMallocArenas()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per core);
/// freed memory stays in the arena that allocated it. The refresher's
/// thread allocates and frees ~0.1 GiB a refresh at 50 k items, librdkafka's
/// and the Redis writer's threads their buffers, so per-thread arenas kept
/// ~150-250 MiB of peak RSS that no table holds (measured at 1 M events:
/// 574-678 MiB with the default, 424 MiB with `MALLOC_ARENA_MAX=2`). Two
/// arenas; must run before any other thread allocates. An explicit
/// `MALLOC_ARENA_MAX` in the environment wins.
func limitMallocArenas() {
    #if os(Linux)
    if ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil {
        _ = glibcMallopt(glibcMArenaMax, 2)
    }
    #endif
}

#if os(Linux)
/// glibc's `mallopt` (declared in <malloc.h>, which the Glibc module does not export).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
/// `M_ARENA_MAX` in <malloc.h>.
private let glibcMArenaMax: Int32 = -8
#endif

/// Prints a line and flushes, so benchmark lines appear as they are measured
/// even when stdout is a file or a pipe (block-buffered there).
func emit(_ line: String) {
    print(line)
    fflush(nil)
}
