// PatchbayServer: the composition root. Reads configuration, wires the modules, owns the lifecycle.
// Configuration is read once at start-up on the main thread; the resulting `PatchbayConfig` is an immutable value
// shared with every plane. A bad value stops start-up with a `ConfigError` naming the key (exit code 2).
import Foundation

/// Everything Patchbay needs to run, after the config file and the environment have been merged and validated.
public struct PatchbayConfig: Sendable, Equatable {
    /// The listener and its event loops.
    public var server: ServerSettings
    /// Where durable state lives (`PATCHBAY_DATA_DIR`).
    public var dataDirectory: String
    /// The URL Twilio and Meta see (`PATCHBAY_PUBLIC_URL`): used in TwiML and to check signatures.
    public var publicURL: String?
    /// Keys accepted as `Authorization: Bearer ...` on `/api/v1` (`PATCHBAY_API_KEYS`, comma-separated).
    public var apiKeys: [String]
    /// Logging level and format.
    public var log: LogSettings
    /// Providers' base URLs (overridable so tests and load runs talk to local fakes).
    public var providers: ProviderEndpoints
    /// The media bridge's tunables.
    public var media = MediaSettings()
    /// How long the event log keeps events for replay (`PATCHBAY_EVENT_RETENTION_HOURS`, default 72).
    public var eventRetentionHours: Double = 72
    /// Delays before each webhook retry, seconds (`PATCHBAY_WEBHOOK_RETRY_SECONDS`, comma-separated); after the last,
    /// the delivery is dead-lettered.
    public var webhookRetrySeconds: [Double] = [5, 30, 120, 600, 3600, 21600]
    /// Tenants; never empty. The first is the default tenant the environment's credentials apply to.
    public var tenants: [Tenant]

    /// The default tenant (the first).
    public var defaultTenant: Tenant { tenants[0] }
}

/// The listener: one port for HTTP and WebSocket, served by `loops` event-loop threads.
public struct ServerSettings: Sendable, Equatable {
    /// Address to bind (`PATCHBAY_HOST`, default all interfaces).
    public var host: String = "0.0.0.0"
    /// Port (`PATCHBAY_PORT`, default 8080; 0 picks a free port).
    public var port: Int = 8080
    /// Event-loop threads (`PATCHBAY_LOOPS`, default one per core).
    public var loops: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Largest accepted request body (`PATCHBAY_MAX_BODY_BYTES`, default 1 MiB); larger gets 413.
    public var maxBodyBytes: Int = 1 << 20
    /// Largest accepted WebSocket message (`PATCHBAY_WS_MAX_MESSAGE_BYTES`, default 64 KiB); larger closes 1009.
    public var maxWebSocketMessageBytes: Int = 64 << 10
    /// How long a graceful shutdown may take before remaining connections are dropped (`PATCHBAY_SHUTDOWN_TIMEOUT`, seconds).
    public var shutdownTimeoutSeconds: Double = 10
    /// Serve `WS /diagnostics/echo`, which echoes every message (`PATCHBAY_DIAGNOSTIC_ECHO`, off by default): for
    /// load testers measuring the gateway's own WebSocket path, and for the round-trip benchmark.
    public var diagnosticEcho: Bool = false
    /// Optional TLS on the listener (`PATCHBAY_TLS_CERT`, `PATCHBAY_TLS_KEY`, PEM files).
    public var tlsCertificatePath: String?
    /// Private key for `tlsCertificatePath`.
    public var tlsKeyPath: String?
}

/// The media bridge's tunables (config file `media`, or the environment).
public struct MediaSettings: Sendable, Equatable {
    /// Most agent audio queued at Twilio ahead of real time (`PATCHBAY_MEDIA_MAX_LEAD_MS`, 20-1000, default 80).
    public var maxLeadMillis = 80
    /// Mark cadence inside agent speech (`PATCHBAY_MEDIA_MARK_INTERVAL_MS`, 20-2000, default 100).
    public var markIntervalMillis = 100
    /// Time for the agent leg to connect and describe its formats (`PATCHBAY_AGENT_START_TIMEOUT_MS`, default 5000).
    public var agentStartTimeoutMillis = 5000
    /// Caller audio held while the agent leg starts (`PATCHBAY_MEDIA_PRE_AGENT_BUFFER_MS`, default 1000); older is dropped.
    public var preAgentBufferMillis = 1000
    /// WAV file played when the agent cannot be reached (`PATCHBAY_FALLBACK_PROMPT`); nil: the embedded Spanish one.
    public var fallbackPromptPath: String?
    /// That prompt as mu-law 8 kHz, read and converted at start-up (nil: the embedded one).
    public var fallbackPrompt: [UInt8]?
}

/// Log level and line format.
public struct LogSettings: Sendable, Equatable {
    /// One of trace, debug, info, notice, warning, error, critical (`PATCHBAY_LOG_LEVEL`).
    public var level: String = "info"
    /// `human` or `json` (`PATCHBAY_LOG_FORMAT`); human by default.
    public var format: LogFormat = .human
}

/// How log records are written.
public enum LogFormat: String, Sendable, Equatable, CaseIterable {
    /// One readable line per record (for a terminal).
    case human
    /// One JSON object per line (for log shippers).
    case json
}

/// Base URLs of every provider (PRODUCT.md "Configuration").
public struct ProviderEndpoints: Sendable, Equatable {
    /// `TWILIO_API_URL`.
    public var twilio = "https://api.twilio.com"
    /// `ELEVENLABS_API_URL` (REST; the ConvAI socket uses the same host with ws/wss).
    public var elevenLabs = "https://api.elevenlabs.io"
    /// `WHATSAPP_API_URL` (Graph API, version in the path).
    public var whatsApp = "https://graph.facebook.com/v25.0"
    /// `MANYCHAT_API_URL`.
    public var manyChat = "https://api.manychat.com"
    /// `OPENAI_API_URL` (any OpenAI-compatible chat-completions endpoint).
    public var openAI = "https://api.openai.com/v1"
}

/// A business using Patchbay: its numbers, agents, credentials and Pusher app.
public struct Tenant: Sendable, Equatable {
    /// Short id used in channel names and URLs (`[a-z0-9_-]`).
    public var id: String
    /// Display name.
    public var name: String
    /// E.164 phone numbers (Twilio numbers that belong to this tenant).
    public var numbers: [String] = []
    /// Twilio credentials.
    public var twilio = TwilioCredentials()
    /// ElevenLabs credentials and agents.
    public var elevenLabs = ElevenLabsSettings()
    /// WhatsApp Cloud API credentials.
    public var whatsApp = WhatsAppCredentials()
    /// ManyChat credentials.
    public var manyChat = ManyChatCredentials()
    /// OpenAI-compatible key.
    public var openAIKey: String?
    /// The tenant's Pusher app (event sockets).
    public var pusher: PusherApp?
}

/// `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`.
public struct TwilioCredentials: Sendable, Equatable {
    public var accountSID: String?
    public var authToken: String?
}

/// `ELEVENLABS_API_KEY`, `ELEVENLABS_AGENT_ID`, and per-number agents.
public struct ElevenLabsSettings: Sendable, Equatable {
    public var apiKey: String?
    /// The agent used when a number has no agent of its own.
    public var defaultAgentID: String?
    /// Called number (E.164) -> agent id.
    public var agentsByNumber: [String: String] = [:]
}

/// `WHATSAPP_ACCESS_TOKEN`, `WHATSAPP_PHONE_NUMBER_ID`, `WHATSAPP_APP_SECRET`, `WHATSAPP_VERIFY_TOKEN`.
public struct WhatsAppCredentials: Sendable, Equatable {
    public var accessToken: String?
    public var phoneNumberID: String?
    public var appSecret: String?
    public var verifyToken: String?
}

/// `MANYCHAT_API_KEY`, `MANYCHAT_WEBHOOK_SECRET`.
public struct ManyChatCredentials: Sendable, Equatable {
    public var apiKey: String?
    public var webhookSecret: String?
}

/// A Pusher Channels app (`PATCHBAY_PUSHER_APP_ID`, `_KEY`, `_SECRET` for the default tenant).
public struct PusherApp: Sendable, Equatable {
    public var appID: String
    public var key: String
    public var secret: String
    /// 32 bytes for `private-encrypted-` channels' shared secrets (`PATCHBAY_PUSHER_ENCRYPTION_MASTER_KEY`, base64).
    public var encryptionMasterKey: [UInt8]? = nil
    /// Most simultaneous connections (`PATCHBAY_PUSHER_MAX_CONNECTIONS`; 0: no limit).
    public var maxConnections: Int = 0
    /// Pusher-format server webhooks go here (`PATCHBAY_PUSHER_WEBHOOK_URL`); nil: none.
    public var webhookURL: String? = nil

    /// A webhook URL: absolute http or https.
    static func webhookURL(_ text: String, key: String) throws(ConfigError) -> String {
        guard let u = URLComponents(string: text), ["http", "https"].contains(u.scheme?.lowercased() ?? ""), !(u.host ?? "").isEmpty else {
            throw ConfigError(key: key, "must be an absolute http(s) URL, got \"\(text)\"")
        }
        return text
    }

    /// The master key from its base64 text: exactly 32 bytes.
    static func masterKey(_ text: String, key: String) throws(ConfigError) -> [UInt8] {
        guard let d = Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)), d.count == 32 else {
            throw ConfigError(key: key, "must be 32 bytes in base64 (for example: openssl rand -base64 32)")
        }
        return Array(d)
    }
}

/// A configuration value that cannot be used. `key` names the environment variable or the config-file path.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    /// The environment variable (`PATCHBAY_PORT`) or config-file path (`tenants[1].numbers[0]`) at fault.
    public var key: String
    /// What is wrong, in words an operator can act on.
    public var message: String

    public init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { "\(key): \(message)" }
}
