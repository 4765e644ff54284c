// MediaBridge: the media plane. Terminates Twilio Media Streams, opens the ElevenLabs Conversational AI leg on the
// same event loop, and bridges 20 ms frames both ways (CallSession). Loop-owned objects never lock, await or log per
// frame; REST calls (signed URLs, hang-ups) go through HTTPClient off the loop and come back through the loop's
// mailbox. Never imports another plane: events leave through `EventSink`.
import Foundation

/// Tunables of the bridge (README "Media bridge settings" names their environment variables).
public struct BridgeSettings: Sendable {
    /// Most agent audio allowed to wait in Twilio's playout queue (ms): the most stale audio a barge-in can leave.
    public var maxLeadMillis = 80
    /// A mark every this many ms of agent audio, besides response boundaries (ms).
    public var markIntervalMillis = 100
    /// How far caller audio may lag the clock before silence is synthesized toward the agent (ms).
    public var inboundStallMillis = 60
    /// Agent audio kept waiting for playout (ms): the bound of the outbound ring.
    public var outboundBufferMillis = 8000
    /// Caller audio held while the agent leg starts, before its input format is known (ms); older is dropped.
    public var preAgentBufferMillis = 1000
    /// Time for the agent leg to connect and send its metadata (ms); past it, the fallback plays.
    public var agentStartTimeoutMillis = 5000
    /// Time for Twilio to send `connected` and `start` after the upgrade (ms).
    public var twilioStartTimeoutMillis = 5000
    /// Silence from Twilio (no message at all) that ends the call (ms).
    public var twilioIdleTimeoutMillis = 15000
    /// Silence from the agent (no message at all) that ends the call (ms).
    public var agentIdleTimeoutMillis = 60000
    /// Wait for the final mark (goodbye or fallback heard) before hanging up (ms).
    public var finalMarkTimeoutMillis = 5000
    /// `call.stats` cadence (ms).
    public var statsIntervalMillis = 5000
    /// The prompt played when the agent cannot be reached or fails: mu-law 8 kHz bytes.
    public var fallbackPrompt: [UInt8] = FallbackPrompt.defaultMuLaw
    /// Text of the `<Say>` after `</Connect>` (heard only if the media stream itself fails).
    public var fallbackSayText = "Lo sentimos, nuestro asistente no está disponible en este momento. Por favor, llame más tarde."
    /// Language of that `<Say>`.
    public var fallbackSayLanguage = "es-ES"
    /// `TWILIO_API_URL`.
    public var twilioAPIURL = "https://api.twilio.com"
    /// `ELEVENLABS_API_URL` (either scheme; see `ElevenLabsEndpoints`).
    public var elevenLabsAPIURL = "https://api.elevenlabs.io"
    /// `PATCHBAY_PUBLIC_URL`: the URL Twilio sees. Nil: derived per request from the Host header (http/ws).
    public var publicURL: String?

    public init() {}
}

/// What the bridge knows of a tenant.
public struct BridgeTenant: Sendable {
    public var id: String
    /// Twilio numbers (E.164) that belong to the tenant.
    public var numbers: [String]
    public var twilioAccountSID: String?
    public var twilioAuthToken: String?
    public var elevenLabsAPIKey: String?
    public var defaultAgentID: String?
    public var agentsByNumber: [String: String]

    public init(id: String, numbers: [String] = [], twilioAccountSID: String? = nil, twilioAuthToken: String? = nil,
                elevenLabsAPIKey: String? = nil, defaultAgentID: String? = nil, agentsByNumber: [String: String] = [:]) {
        self.id = id
        self.numbers = numbers
        self.twilioAccountSID = twilioAccountSID
        self.twilioAuthToken = twilioAuthToken
        self.elevenLabsAPIKey = elevenLabsAPIKey
        self.defaultAgentID = defaultAgentID
        self.agentsByNumber = agentsByNumber
    }

    /// The agent for a called number.
    public func agent(forCalled number: String) -> String? { agentsByNumber[number] ?? defaultAgentID }

    /// Whether the tenant owns `number`.
    public func owns(_ number: String) -> Bool { numbers.contains(number) || agentsByNumber[number] != nil }
}

/// The REST and socket forms of `ELEVENLABS_API_URL` (http <-> ws, https <-> wss).
public struct ElevenLabsEndpoints: Sendable, Equatable {
    /// `http(s)://host[:port][/prefix]`, for REST.
    public var rest: String
    /// `ws(s)://host[:port][/prefix]`, for the ConvAI socket.
    public var socket: String

    public init(_ configured: String) {
        var base = configured
        while base.hasSuffix("/") { base.removeLast() }
        let pairs = [("https://", "wss://"), ("http://", "ws://")]
        rest = base
        socket = base
        for (http, ws) in pairs {
            if base.hasPrefix(http) { socket = ws + base.dropFirst(http.count) }
            if base.hasPrefix(ws) { rest = http + base.dropFirst(ws.count) }
        }
    }

    /// `GET …/v1/convai/conversation/get-signed-url?agent_id=…` (private agents).
    public func signedURLRequestURL(agentID: String) -> String {
        rest + "/v1/convai/conversation/get-signed-url?agent_id=" + Self.queryEscape(agentID)
    }

    /// The ConvAI socket of a public agent.
    public func conversationURL(agentID: String) -> String {
        socket + "/v1/convai/conversation?agent_id=" + Self.queryEscape(agentID)
    }

    static func queryEscape(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}
