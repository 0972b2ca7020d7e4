import ArgumentParser
import Foundation

@main
struct Freshet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "freshet",
        abstract: "A stream processor that turns recommender events in Kafka into fresh features in Redis.",
        subcommands: [RunCommand.self, ProduceCommand.self, FeaturesCommand.self, BenchCommand.self, EvalCommand.self]
    )
}

/// Prints a line and flushes, so benchmark lines appear as they are measured
/// even when stdout is a file or a pipe (block-buffered there).
func emit(_ line: String) {
    print(line)
    fflush(nil)
}
