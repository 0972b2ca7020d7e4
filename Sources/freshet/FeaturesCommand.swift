import ArgumentParser

struct FeaturesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "features", abstract: "Not built yet.")
    func run() async throws { throw ValidationError("freshet features is not built yet") }
}
