// The media plane's entry point: routes (`POST /twilio/voice`, `POST /twilio/status`, `WS /twilio/media`), the
// tenants it serves, and the shared, thread-safe parts (HTTP client, event sink, counters). Each call is a
// `CallSession` owned by the event loop that accepted its Twilio socket.
import Foundation
import Events
import HTTPClient
import Logging
import Signing
import Synchronization
import Transport
import WireFormats

/// Counters across all calls (rendered on `/metrics`).
public final class BridgeCounters: Sendable {
    public let activeCalls = Atomic<Int>(0)
    public let callsStarted = Atomic<Int>(0)
    public let callsCompleted = Atomic<Int>(0)
    public let callsFailed = Atomic<Int>(0)
    public let streamsRefused = Atomic<Int>(0)
    public let interruptions = Atomic<Int>(0)
    public let framesToAgent = Atomic<Int>(0)
    public let framesToCaller = Atomic<Int>(0)
    public let underruns = Atomic<Int>(0)
    init() {}
}

/// The media plane.
public final class MediaBridge: Sendable {
    public let settings: BridgeSettings
    public let tenants: [BridgeTenant]
    public let counters = BridgeCounters()
    let http: HTTPClient
    let events: any EventSink
    let logger: Logger
    let endpoints: ElevenLabsEndpoints
    private let scratch = Mutex<[Int: LoopScratch]>([:])

    public init(settings: BridgeSettings, tenants: [BridgeTenant], http: HTTPClient, events: any EventSink, logger: Logger) {
        self.settings = settings
        self.tenants = tenants
        self.http = http
        self.events = events
        self.logger = logger
        endpoints = ElevenLabsEndpoints(settings.elevenLabsAPIURL)
    }

    /// Adds the media plane's routes.
    public func install(on router: Router) {
        router.captureHeader("x-twilio-signature")
        router.captureHeader("x-forwarded-proto")
        router.on(.POST, "/twilio/voice") { [self] req in try voiceWebhook(req) }
        router.on(.POST, "/twilio/status") { [self] req in try statusCallback(req) }
        router.webSocket("/twilio/media") { [self] req, loop in try acceptStream(req, loop: loop) }
    }

    /// Buffers shared by the calls of one loop (used synchronously, never across a suspension).
    func scratch(for loop: EventLoop) -> LoopScratch {
        scratch.withLock { map in
            if let s = map[loop.index] { return s }
            let s = LoopScratch()
            map[loop.index] = s
            return s
        }
    }

    // MARK: - URLs and signatures

    /// The public base URL (`PATCHBAY_PUBLIC_URL`, else `http://<Host>`), without a trailing slash.
    func publicBase(_ req: HTTPRequest) -> String {
        if var base = settings.publicURL {
            while base.hasSuffix("/") { base.removeLast() }
            return base
        }
        return "http://" + (req.headers["host"] ?? "localhost")
    }

    /// The stream URL Twilio signs on the upgrade (§3): https -> wss, http -> ws, no query.
    func streamURL(_ req: HTTPRequest) -> String {
        let base = publicBase(req)
        if base.hasPrefix("https://") { return "wss://" + base.dropFirst(8) + "/twilio/media" }
        if base.hasPrefix("http://") { return "ws://" + base.dropFirst(7) + "/twilio/media" }
        return base + "/twilio/media"
    }

    /// The URL Twilio requested for an HTTP webhook (public base + path + query as received).
    func webhookURL(_ req: HTTPRequest) -> String {
        publicBase(req) + req.path + (req.query.isEmpty ? "" : "?" + req.query)
    }

    /// The per-call token carried in `<Parameter name="token">`: binds a stream to the call and tenant the voice
    /// webhook answered, since the upgrade signature covers only the URL and is the same for every call.
    static func callToken(tenant: BridgeTenant, callSID: String) -> String {
        Signing.hex(Signing.hmac(.sha256, key: tenant.twilioAuthToken ?? "", message: "patchbay-stream|\(tenant.id)|\(callSID)").prefix(16))
    }

    func tenant(id: String) -> BridgeTenant? { tenants.first { $0.id == id } }

    /// The tenant a called number belongs to (the only tenant when there is one).
    func tenant(forCalled number: String) -> BridgeTenant? {
        tenants.first { $0.owns(number) } ?? (tenants.count == 1 ? tenants[0] : nil)
    }

    // MARK: - WS /twilio/media

    func acceptStream(_ req: HTTPRequest, loop: EventLoop) throws -> any WebSocketHandler {
        let url = streamURL(req)
        guard let signature = req.headers["x-twilio-signature"], !signature.isEmpty else {
            counters.streamsRefused.add(1, ordering: .relaxed)
            throw HTTPError(403, code: "missing_signature", message: "X-Twilio-Signature is required on the media stream upgrade")
        }
        let signed = tenants.filter { t in
            t.twilioAuthToken.map { TwilioRequestSignature.isValid(signature, authToken: $0, url: url) } ?? false
        }
        guard !signed.isEmpty else {
            counters.streamsRefused.add(1, ordering: .relaxed)
            logger.warning("media stream refused: bad signature", metadata: ["url": "\(url)"])
            throw HTTPError(403, code: "invalid_signature", message: "X-Twilio-Signature does not match \(url)")
        }
        return CallSession(bridge: self, loop: loop, signedTenants: signed.map(\.id))
    }
}

/// Per-loop scratch buffers for decoding agent audio (one agent message can carry seconds of audio).
final class LoopScratch: @unchecked Sendable {
    static let agentAudioBytes = 1 << 20
    /// Decoded agent audio (one message's worth).
    let agentAudio = UnsafeMutableRawBufferPointer.allocate(byteCount: LoopScratch.agentAudioBytes, alignment: 16)
}
