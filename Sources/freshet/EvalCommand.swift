import ArgumentParser

struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Not built yet.")
    func run() async throws { throw ValidationError("freshet eval is not built yet") }
}
