// `patchbay sim agent | caller`: the simulators from Harness, for developers and load testers.
import ArgumentParser
import AudioCodecs
import AudioCore
import Foundation
import Harness
import HTTPClient
import Logging
import PatchbayServer
import Signing
import Transport
import WireFormats

struct Sim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulators: an ElevenLabs ConvAI agent and a Twilio Media Streams caller.",
        subcommands: [AgentCommand.self, CallerCommand.self]
    )
}

func simLogger(_ label: String, verbose: Bool) -> Logger {
    var l = Logger(label: label)
    l.logLevel = verbose ? .debug : .warning
    return l
}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Serve the ElevenLabs Conversational AI protocol locally (point ELEVENLABS_API_URL at it).",
        discussion: """
        echo mode returns the caller's audio after --delay-ms in the output format; script mode plays --script-wav as
        agent responses faster than real time, sends transcripts, and sends `interruption` when the caller talks over
        it. Both send pings every --ping-ms and check the pongs. With --api-key, sockets need a signed URL from
        GET /v1/convai/conversation/get-signed-url (xi-api-key). Runs until SIGINT / SIGTERM, then prints a report.
        Example:  patchbay sim agent --port 9100 --output-format pcm_16000 --input-format pcm_16000
                  ELEVENLABS_API_URL=http://127.0.0.1:9100 ELEVENLABS_AGENT_ID=any patchbay serve
        """
    )
    @Option(help: "Port (0 = any free port, printed).") var port: Int = 9100
    @Option(help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(help: "echo or script.") var mode: String = "echo"
    @Option(help: "user_input_audio_format: ulaw_8000, pcm_8000, pcm_16000, pcm_22050, pcm_24000, pcm_44100, pcm_48000.") var inputFormat = "ulaw_8000"
    @Option(help: "agent_output_audio_format (same values).") var outputFormat = "ulaw_8000"
    @Option(help: "Echo delay in ms.") var delayMs = 0
    @Option(help: "Ping cadence in ms (0: none).") var pingMs = 2000
    @Option(help: "Require this xi-api-key and signed URLs.") var apiKey: String?
    @Option(help: "Script mode: WAV file with the agent's response audio.") var scriptWav: String?
    @Option(help: "Script mode: how much faster than real time responses are sent.") var speed: Double = 4
    @Option(help: "Script mode: end the conversation (close 1000) after this many responses (0: never).") var endAfter = 0
    @Option(name: .customLong("require-var"), help: "A dynamic variable the initiation must carry (repeatable).") var requiredVars: [String] = []
    @Option(help: "Event-loop threads.") var loops = 1
    @Flag(help: "Log connections.") var verbose = false

    func run() async throws {
        var c = AgentSimulatorConfiguration()
        guard let m = AgentSimulatorConfiguration.Mode(rawValue: mode) else {
            printError("patchbay sim agent: --mode must be echo or script")
            throw ExitCode(2)
        }
        c.mode = m
        c.inputFormat = inputFormat
        c.outputFormat = outputFormat
        c.echoDelayMillis = delayMs
        c.pingIntervalMillis = pingMs
        c.apiKey = apiKey
        c.scriptSpeed = speed
        c.endAfterResponses = endAfter
        c.requiredDynamicVariables = requiredVars
        if m == .script {
            do {
                let samples = try scriptWav.map { try AudioClip.loadWAV($0, rate: 16000) } ?? Self.tone(seconds: 3)
                c.scriptRate = 16000
                c.scriptResponses = [("Hola, gracias por llamar. ¿En qué puedo ayudarle?", samples), ("Perfecto, lo anoto.", samples)]
            } catch {
                printError("patchbay sim agent: \(error)")
                throw ExitCode(1)
            }
        }
        let sim: AgentSimulator
        do {
            sim = try AgentSimulator(configuration: c, host: host, port: port, loops: loops, logger: simLogger("sim.agent", verbose: verbose))
            try sim.start()
        } catch {
            printError("patchbay sim agent: cannot start: \(error)")
            throw ExitCode(1)
        }
        print("agent simulator (\(mode), in \(inputFormat), out \(outputFormat)) on http://\(host):\(sim.port)  (ELEVENLABS_API_URL=http://\(host):\(sim.port))")
        _ = await waitForTerminationSignal()
        await sim.shutdown()
        let r = sim.report
        print("sessions \(r.sessions), rejected \(r.rejectedSessions), audio chunks \(r.audioChunks), pings \(r.pingsSent), pongs matched \(r.pongsMatched), interruptions \(r.interruptionsSent), DTMF/user messages \(r.userMessages.count)")
    }

    static func tone(seconds: Double) -> [Int16] {
        (0..<Int(16000 * seconds)).map { Int16(6000 * sin(2 * Double.pi * 440 * Double($0) / 16000)) }
    }
}

extension AgentSimulatorConfiguration.Mode {
    init?(rawValue: String) {
        switch rawValue {
        case "echo": self = .echo
        case "script": self = .script
        default: return nil
        }
    }
}

struct CallerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caller",
        abstract: "Place a simulated Twilio call: stream a WAV as real-time mu-law, answer marks, record what comes back.",
        discussion: """
        Unless --param is given, it first asks the voice webhook (http(s) form of --url, path /twilio/voice) for
        TwiML, signed like Twilio, and uses the <Parameter>s it returns. The upgrade is signed with --auth-token over
        --signed-url (default: --url), as Twilio signs it. Prints what it measured; exit 0 when the call ran
        with no protocol violation, 1 otherwise.
        Example:  patchbay sim caller --url ws://127.0.0.1:8080/twilio/media --wav fixtures/speech/es_8000.wav --record heard.wav
        """
    )
    @Option(help: "Media stream URL, ws:// or wss://.") var url: String
    @Option(help: "WAV file to stream (any rate; converted to mu-law 8 kHz).") var wav: String
    @Option(help: "Twilio auth token for signatures (default: TWILIO_AUTH_TOKEN).") var authToken: String?
    @Option(help: "The URL Twilio would sign for the upgrade (default: --url).") var signedUrl: String?
    @Option(help: "The public base URL the webhook signature uses (default: http(s) form of --url's host).") var publicUrl: String?
    @Option(help: "Account SID.") var accountSid = "AC00000000000000000000000000000001"
    @Option(name: .customLong("param"), help: "A <Parameter> name=value (repeatable); skips the voice webhook.") var params: [String] = []
    @Option(help: "Called number for the voice webhook.") var to = "+15005550006"
    @Option(help: "Caller number for the voice webhook.") var from = "+14155550100"
    @Option(help: "Seconds to stream (default: the WAV's length).") var seconds: Double?
    @Option(name: .customLong("dtmf"), help: "MS:DIGIT, a key press at MS ms (repeatable).") var dtmf: [String] = []
    @Option(help: "Keep listening this long after the last frame (ms).") var listenMs = 1500
    @Option(help: "Write what the caller heard to this WAV file.") var record: String?
    @Option(help: "Also serve Twilio's call-update REST endpoint on this port (point TWILIO_API_URL at it).") var apiPort: Int?
    @Flag(help: "Do not hang up at the end: wait for the gateway to end the call (through --api-port).") var noHangup = false
    @Flag(help: "Log connections.") var verbose = false

    func run() async throws {
        let token = authToken ?? ProcessInfo.processInfo.environment["TWILIO_AUTH_TOKEN"]
        let audio: [UInt8]
        do { audio = MuLaw.encode(try AudioClip.loadWAV(wav, rate: 8000)) } catch {
            printError("patchbay sim caller: \(error)")
            throw ExitCode(1)
        }
        var c = CallerSimulatorConfiguration(url: url)
        c.signedURL = signedUrl
        c.authToken = token
        c.accountSID = accountSid
        c.audio = audio
        c.durationMillis = seconds.map { Int($0 * 1000) }
        c.listenAfterMillis = listenMs
        c.hangUp = !noHangup
        for d in dtmf {
            let parts = d.split(separator: ":")
            guard parts.count == 2, let ms = Int(parts[0]) else { printError("patchbay sim caller: --dtmf takes MS:DIGIT"); throw ExitCode(2) }
            c.dtmf.append((ms, String(parts[1])))
        }
        let logger = simLogger("sim.caller", verbose: verbose)
        if params.isEmpty {
            guard let token else { printError("patchbay sim caller: --auth-token or TWILIO_AUTH_TOKEN is needed to sign the voice webhook"); throw ExitCode(2) }
            do { c.customParameters = try await voiceWebhook(callSID: c.callSID, token: token, logger: logger) } catch {
                printError("patchbay sim caller: voice webhook: \(error)")
                throw ExitCode(1)
            }
        } else {
            for p in params {
                guard let eq = p.firstIndex(of: "=") else { printError("patchbay sim caller: --param takes name=value"); throw ExitCode(2) }
                c.customParameters[String(p[..<eq])] = String(p[p.index(after: eq)...])
            }
        }
        var api: TwilioAPISimulator?
        if let apiPort, let token {
            let a = TwilioAPISimulator(accountSID: accountSid, authToken: token, port: apiPort, logger: logger)
            try a.start()
            api = a
        }
        let server = try CallerSimulator.makeClientServer(logger: logger)
        let r = await CallerSimulator.run(c, on: server.loops[0], api: api)
        await server.shutdown(timeout: .seconds(2))
        if let api { await api.shutdown() }
        let echo = r.echoLatency()
        print("connected \(r.connected), close \(r.closeCode.map(String.init) ?? "-") \(r.closeReason)")
        print("frames sent \(r.framesSent) (late sends \(r.lateSends)), media received \(r.mediaReceived), payload sizes \(r.payloadSizes.sorted())")
        print("marks received \(r.marksReceived), echoed \(r.marksEchoed), clears \(r.clears), protocol violations \(r.protocolViolations) \(r.violationSamples)")
        print(String(format: "longest gap toward the caller %.1f ms, echo latency %.1f ms (correlation %.3f), ended by REST hang-up: %@",
                     r.longestGapMillis(), echo.millis, echo.correlation, r.hungUpByAPI ? "yes" : "no"))
        if let record {
            let wav = WAVAudio(sampleRate: 8000, samples: MuLaw.decode(r.receivedAudio)).serialized()
            FileManager.default.createFile(atPath: record, contents: Data(wav))
            print("recorded \(r.receivedAudio.count / 8) ms to \(record)")
        }
        if !r.connected || r.protocolViolations > 0 { throw ExitCode(1) }
    }

    func voiceWebhook(callSID: String, token: String, logger: Logger) async throws -> [String: String] {
        var base = url.replacingOccurrences(of: "wss://", with: "https://").replacingOccurrences(of: "ws://", with: "http://")
        if let r = base.range(of: "/twilio/media") { base = String(base[..<r.lowerBound]) }
        let signedBase = publicUrl ?? base
        let params: [(String, String)] = [("AccountSid", accountSid), ("CallSid", callSID), ("CallStatus", "ringing"), ("Direction", "inbound"),
                                          ("From", from), ("To", to), ("Caller", from), ("Called", to), ("ApiVersion", "2010-04-01")]
        let signature = TwilioRequestSignature.compute(authToken: token, url: signedBase + "/twilio/voice", parameters: params)
        let http = HTTPClient(logger: logger)
        defer { http.shutdown() }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = params.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
        let r = try await http.execute(HTTPClientRequest(method: "POST", url: base + "/twilio/voice",
                                                         headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Twilio-Signature", signature)],
                                                         body: Array(body.utf8)))
        guard r.status == 200 else { throw HarnessError("answered \(r.status): \(r.bodyText)") }
        return TwiML.streamParameters(r.bodyText)
    }
}
