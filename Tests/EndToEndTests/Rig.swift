// The end-to-end rig: a real Patchbay (Application, real sockets on 127.0.0.1), the ElevenLabs agent simulator,
// the Twilio REST simulator, and simulated callers, all in this process so tests can compare their clocks.
import AudioCore
import Events
import Foundation
import Harness
import HTTPClient
import Logging
import PatchbayServer
import Signing
import TestSupport
import Transport
import WireFormats

let twilioAccount = "AC00000000000000000000000000000001"
let twilioToken = "9a0b8c7d6e5f40312a3b4c5d6e7f8091"
let publicURL = "https://gw.example.com"

func quietLogger(_ label: String) -> Logger {
    var l = Logger(label: label)
    l.logLevel = ProcessInfo.processInfo.environment["PATCHBAY_TEST_LOG"] == nil ? .critical : .debug
    return l
}

/// One gateway with its simulated providers.
final class Rig: @unchecked Sendable {
    let agent: AgentSimulator
    let api: TwilioAPISimulator
    let app: Application
    let events = RecordingEventSink()
    let callers: Server
    let http: HTTPClient
    let dataDir: String

    init(agent agentConfig: AgentSimulatorConfiguration, env extra: [String: String] = [:], agentReachable: Bool = true) throws {
        agent = try AgentSimulator(configuration: agentConfig, logger: quietLogger("sim.agent"))
        try agent.start()
        api = TwilioAPISimulator(accountSID: twilioAccount, authToken: twilioToken, logger: quietLogger("sim.twilio"))
        try api.start()
        dataDir = NSTemporaryDirectory() + "patchbay-e2e-" + UUID().uuidString
        var env: [String: String] = [
            "PATCHBAY_PORT": "0", "PATCHBAY_LOOPS": "1", "PATCHBAY_DATA_DIR": dataDir, "PATCHBAY_PUBLIC_URL": publicURL,
            "TWILIO_ACCOUNT_SID": twilioAccount, "TWILIO_AUTH_TOKEN": twilioToken, "TWILIO_API_URL": api.baseURL,
            "ELEVENLABS_AGENT_ID": "agent_test",
            "ELEVENLABS_API_URL": agentReachable ? "http://127.0.0.1:\(agent.port)" : "http://127.0.0.1:\(freeLoopbackPort())",
        ]
        if let key = agentConfig.apiKey { env["ELEVENLABS_API_KEY"] = key }
        for (k, v) in extra { env[k] = v }
        let config = try ConfigLoader.load(environment: env)
        app = Application(config: config, logger: quietLogger("patchbay"))
        app.events.subscribe(events)
        try app.start()
        callers = try CallerSimulator.makeClientServer(logger: quietLogger("sim.caller"))
        http = HTTPClient(logger: quietLogger("test.http"))
    }

    func shutdown() async {
        await callers.shutdown(timeout: .seconds(2))
        await app.shutdown()
        await agent.shutdown()
        await api.shutdown()
        http.shutdown()
        try? FileManager.default.removeItem(atPath: dataDir)
    }

    var mediaURL: String { "ws://127.0.0.1:\(app.port)/twilio/media" }

    /// Asks `POST /twilio/voice` as Twilio would (signed form) and returns the status and body.
    func voiceWebhook(callSID: String, from: String = "+14155550100", to: String = "+15005550006",
                      token: String = twilioToken) async throws -> (status: Int, body: String) {
        let params: [(String, String)] = [
            ("AccountSid", twilioAccount), ("ApiVersion", "2010-04-01"), ("CallSid", callSID), ("CallStatus", "ringing"),
            ("Called", to), ("Caller", from), ("Direction", "inbound"), ("From", from), ("To", to),
        ]
        let signature = TwilioRequestSignature.compute(authToken: token, url: publicURL + "/twilio/voice", parameters: params)
        let body = params.map { "\($0.0)=\(formEscape($0.1))" }.joined(separator: "&")
        let r = try await http.execute(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(app.port)/twilio/voice",
                                                         headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Twilio-Signature", signature)],
                                                         body: Array(body.utf8)))
        return (r.status, r.bodyText)
    }

    /// A caller configured from the TwiML the voice webhook returned (its `<Parameter>`s).
    func caller(audio: [UInt8], durationMillis: Int? = nil) async throws -> CallerSimulatorConfiguration {
        var c = CallerSimulatorConfiguration(url: mediaURL)
        c.signedURL = "wss://gw.example.com/twilio/media"
        c.authToken = twilioToken
        c.accountSID = twilioAccount
        let answer = try await voiceWebhook(callSID: c.callSID)
        precondition(answer.status == 200, "voice webhook answered \(answer.status): \(answer.body)")
        c.customParameters = twimlParameters(answer.body)
        c.audio = audio
        c.durationMillis = durationMillis
        return c
    }

    func call(_ c: CallerSimulatorConfiguration) async -> CallerReport {
        await CallerSimulator.run(c, on: callers.loops[0], api: api)
    }

    /// Opens a raw Twilio-side stream on the callers' loop, signed like Twilio unless `signature` says otherwise.
    func openRawStream(_ handler: any WebSocketHandler & Sendable, signature: String? = nil) -> ConnectionBox {
        var headers = HTTPHeaders()
        headers.add(name: "X-Twilio-Signature", value: signature ?? TwilioRequestSignature.compute(authToken: twilioToken, url: "wss://gw.example.com/twilio/media"))
        let loop = callers.loops[0], url = mediaURL, h = headers
        let box = ConnectionBox()
        loop.execute { box.connection = loop.connectWebSocket(url: url, headers: h, handler: handler) }
        return box
    }

    /// Waits for an event of `type` (polling; the sink is filled from loop threads).
    func event(_ type: String, seconds: Double = 5) async -> PatchbayEvent? {
        var found: PatchbayEvent?
        _ = await eventually(seconds: seconds) {
            found = events.events.first { $0.type == type }
            return found != nil
        }
        return found
    }
}

func formEscape(_ s: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
}

func twimlParameters(_ xml: String) -> [String: String] {
    var out: [String: String] = [:]
    let re = try! NSRegularExpression(pattern: "<Parameter name=\"([^\"]*)\" value=\"([^\"]*)\"/>")
    for m in re.matches(in: xml, range: NSRange(xml.startIndex..., in: xml)) {
        let name = String(xml[Range(m.range(at: 1), in: xml)!]), value = String(xml[Range(m.range(at: 2), in: xml)!])
        out[name] = value.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&apos;", with: "'").replacingOccurrences(of: "&amp;", with: "&")
    }
    return out
}

/// The Spanish speech fixture as mu-law 8 kHz.
func speechMuLaw() throws -> [UInt8] {
    MuLaw.encode(try AudioClip.loadWAV(repositoryRoot.appendingPathComponent("fixtures/speech/es_8000.wav").path, rate: 8000))
}

/// The Spanish speech fixture as PCM16 16 kHz.
func speech16k() throws -> [Int16] {
    try AudioClip.loadWAV(repositoryRoot.appendingPathComponent("fixtures/speech/es_16000.wav").path, rate: 16000)
}

/// Integer data member of an event.
func int(_ e: PatchbayEvent?, _ path: String...) -> Int64? {
    var v: JSONValue? = e?.data
    for p in path { v = v?[p] }
    if case .int(let i)? = v { return i }
    return nil
}

func string(_ e: PatchbayEvent?, _ path: String...) -> String? {
    var v: JSONValue? = e?.data
    for p in path { v = v?[p] }
    if case .string(let s)? = v { return s }
    return nil
}

/// A connection handed back from the loop that opened it (touched only on that loop).
final class ConnectionBox: @unchecked Sendable {
    var connection: WebSocketConnection?
}
