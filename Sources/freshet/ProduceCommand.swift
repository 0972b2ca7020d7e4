import ArgumentParser

struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "produce", abstract: "Not built yet.")
    func run() async throws { throw ValidationError("freshet produce is not built yet") }
}
