import ArgumentParser

@main
struct Freshet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "freshet",
        abstract: "A stream processor that turns recommender events in Kafka into fresh features in Redis.",
        subcommands: [RunCommand.self, ProduceCommand.self, FeaturesCommand.self, BenchCommand.self, EvalCommand.self]
    )
}
