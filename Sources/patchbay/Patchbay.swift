// The `patchbay` executable: parses the command line and hands over to PatchbayServer. Kept trivial on purpose:
// no C glue and no global state here (shared/notes/c-interop.md: main.swift closures escape strict checking).
import ArgumentParser
import AudioCodecs
import Logging
import PatchbayServer
#if canImport(Glibc)
import Glibc
#endif

@main
struct Patchbay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patchbay",
        abstract: "Real-time voice and messaging gateway: Twilio Media Streams <-> ElevenLabs, chat webhooks, Pusher events.",
        discussion: """
        Configuration comes from an optional JSON file (--config or PATCHBAY_CONFIG) and the environment, which
        overrides it. With neither, `patchbay serve` runs one default tenant from the environment on port 8080.
        Run `patchbay config check` to see what a configuration resolves to, with secrets redacted.
        """,
        version: PatchbayVersion.current,
        subcommands: [Serve.self, Sim.self, ConfigCommand.self, Transcode.self, Version.self]
    )
}

/// Options every command that reads configuration shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("JSON config file (tenants, numbers, agents, apps). Overrides PATCHBAY_CONFIG.", valueName: "file"))
    var config: String?

    /// Loads the configuration or exits with code 2 and a message naming the bad key.
    func load() throws -> PatchbayConfig {
        do {
            return try ConfigLoader.load(filePath: config, environment: currentEnvironment())
        } catch {
            printError("patchbay: configuration error: \(error.description)")
            throw ExitCode(2)
        }
    }
}

func currentEnvironment() -> [String: String] {
    var env: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let s = String(cString: entry)
        if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        p += 1
    }
    return env
}

func printError(_ message: String) {
    var line = Array(message.utf8)
    line.append(0x0A)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway until SIGTERM or SIGINT, then shut down gracefully.",
        discussion: """
        Serves HTTP and WebSocket on one port (PATCHBAY_PORT, default 8080) with one event loop per core.
        On SIGTERM / SIGINT: /readyz turns 503, listening stops, WebSockets close with 1001, in-flight requests
        finish (up to PATCHBAY_SHUTDOWN_TIMEOUT seconds), then the process exits 0.
        Exit codes: 0 after a graceful shutdown, 1 when the port or data directory cannot be used, 2 for a bad configuration.
        """
    )
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        PatchbayLogging.bootstrap(config.log)
        let metrics = PatchbayMetrics()
        metrics.bootstrapGlobal()
        let logger = Logger(label: "patchbay")
        for warning in config.warnings() { logger.warning("configuration", metadata: ["config.warning": "\(warning)"]) }
        let app = Application(config: config, logger: logger, metrics: metrics)
        do {
            try app.start()
        } catch {
            printError("patchbay: cannot start: \(error)")
            throw ExitCode(1)
        }
        await app.runUntilSignalled()
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print Patchbay's version and the versions of the C libraries it runs on.")

    func run() {
        print("patchbay \(PatchbayVersion.current)")
        for (name, version) in LibraryVersions.all() { print("  \(name) \(version)") }
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Inspect configuration.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration (file + environment) and print what it resolves to, secrets redacted.",
            discussion: "Exit code 0 when the configuration is usable, 2 with a message naming the bad key when it is not."
        )
        @OptionGroup var options: ConfigOptions

        func run() throws {
            let config = try options.load()
            print("configuration OK")
            for line in config.summaryLines() { print("  \(line)") }
            for w in config.warnings() { print("warning: \(w)") }
        }
    }
}

struct Transcode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert an audio file, format by extension: .wav, .ulaw/.alaw (raw 8 kHz), .ogg/.opus (Ogg/Opus).",
        discussion: """
        Turn a TTS WAV into a WhatsApp voice note:  patchbay transcode reply.wav reply.ogg --rate 16000
        Prepare load-test fixtures:                 patchbay transcode greeting.wav greeting.ulaw
        Exit codes: 0 on success, 1 for an unsupported, unreadable or corrupt input.
        """
    )
    @Argument(help: "Input file.") var input: String
    @Argument(help: "Output file.") var output: String
    @Option(help: "Output sample rate in Hz (Ogg/Opus: 8000, 12000, 16000, 24000 or 48000).") var rate: Int?
    @Option(help: "Opus bitrate in bits per second.") var bitrate: Int = 24_000
    @Option(help: "Opus complexity, 0 to 10.") var complexity: Int = 10

    func run() throws {
        var options = AudioFileConverter.Options()
        options.rate = rate
        options.bitrate = bitrate
        options.complexity = complexity
        do {
            print(try AudioFileConverter.convert(inputPath: input, outputPath: output, options: options))
        } catch {
            printError("patchbay transcode: \(error)")
            throw ExitCode(1)
        }
    }
}
