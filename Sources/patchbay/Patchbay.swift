import ArgumentParser

@main
struct Patchbay: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "patchbay", abstract: "Real-time voice and messaging gateway.")
}
