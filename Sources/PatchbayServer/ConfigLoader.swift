// Reads the optional JSON config file, applies the environment over it, and validates the result.
// Every failure is a ConfigError naming the environment variable or the file path of the bad value.
import AudioCodecs
import AudioCore
import Foundation

/// Builds a `PatchbayConfig` from a config file (optional) and the environment.
///
/// The file is JSON (see `deploy/patchbay.example.json`). Any string in it may be written `"env:NAME"` to read the
/// value from the environment variable `NAME`, so secrets stay out of the file. Unknown keys are refused, so a typo
/// never silently drops a setting. The environment overrides the file: server settings, provider URLs, and the
/// credentials of the default tenant (the first one in the file, or the only one when there is no file).
public enum ConfigLoader {
    /// Every environment variable Patchbay reads, with a one-line description (for `.env.example` and `--help`).
    public static let environmentVariables: [(name: String, meaning: String)] = [
        ("PATCHBAY_CONFIG", "path of the JSON config file (same as --config)"),
        ("PATCHBAY_HOST", "address to bind (default 0.0.0.0)"),
        ("PATCHBAY_PORT", "port for HTTP and WebSocket (default 8080; 0 = any free port)"),
        ("PATCHBAY_LOOPS", "event-loop threads (default: one per core)"),
        ("PATCHBAY_DATA_DIR", "directory for durable state (default ./data)"),
        ("PATCHBAY_PUBLIC_URL", "the https URL Twilio and Meta see; used in TwiML and to check signatures"),
        ("PATCHBAY_API_KEYS", "comma-separated keys accepted as Authorization: Bearer on /api/v1"),
        ("PATCHBAY_LOG_LEVEL", "trace, debug, info (default), notice, warning, error, critical"),
        ("PATCHBAY_LOG_FORMAT", "human (default) or json"),
        ("PATCHBAY_MAX_BODY_BYTES", "largest request body accepted (default 1048576); larger gets 413"),
        ("PATCHBAY_WS_MAX_MESSAGE_BYTES", "largest WebSocket message accepted (default 65536); larger closes 1009"),
        ("PATCHBAY_SHUTDOWN_TIMEOUT", "seconds a graceful shutdown may take (default 10)"),
        ("PATCHBAY_DIAGNOSTIC_ECHO", "true to serve WS /diagnostics/echo, an echo socket for load tests (default false)"),
        ("PATCHBAY_MEDIA_MAX_LEAD_MS", "most agent audio queued at Twilio ahead of real time, ms (default 80)"),
        ("PATCHBAY_MEDIA_MARK_INTERVAL_MS", "a Twilio mark every this many ms of agent audio (default 100)"),
        ("PATCHBAY_AGENT_START_TIMEOUT_MS", "time for the agent leg to connect and send its formats, ms (default 5000)"),
        ("PATCHBAY_MEDIA_PRE_AGENT_BUFFER_MS", "caller audio held while the agent leg starts, ms (default 1000); older audio is dropped"),
        ("PATCHBAY_FALLBACK_PROMPT", "WAV file played when the agent cannot be reached (default: embedded Spanish prompt)"),
        ("PATCHBAY_EVENT_RETENTION_HOURS", "hours the event log keeps events for replay (default 72)"),
        ("PATCHBAY_WEBHOOK_RETRY_SECONDS", "delays before each webhook retry, comma-separated seconds (default 5,30,120,600,3600,21600)"),
        ("PATCHBAY_TLS_CERT", "PEM certificate chain: serve https/wss directly (optional)"),
        ("PATCHBAY_TLS_KEY", "PEM private key for PATCHBAY_TLS_CERT"),
        ("PATCHBAY_PUSHER_APP_ID", "default tenant's Pusher app id"),
        ("PATCHBAY_PUSHER_APP_KEY", "default tenant's Pusher app key (the {key} in /app/{key})"),
        ("PATCHBAY_PUSHER_APP_SECRET", "default tenant's Pusher app secret"),
        ("PATCHBAY_PUSHER_ENCRYPTION_MASTER_KEY", "default tenant's 32-byte base64 key for private-encrypted- channels (optional)"),
        ("PATCHBAY_PUSHER_MAX_CONNECTIONS", "most event-socket connections the default tenant's app may hold (default 0: no limit)"),
        ("PATCHBAY_PUSHER_WEBHOOK_URL", "URL for Pusher-format server webhooks (channel_occupied, member_added...) of the default tenant's app (optional)"),
        ("TWILIO_ACCOUNT_SID", "default tenant's Twilio account SID"),
        ("TWILIO_AUTH_TOKEN", "default tenant's Twilio auth token (checks X-Twilio-Signature)"),
        ("ELEVENLABS_API_KEY", "default tenant's ElevenLabs API key"),
        ("ELEVENLABS_AGENT_ID", "default tenant's ElevenLabs agent"),
        ("WHATSAPP_ACCESS_TOKEN", "default tenant's WhatsApp Cloud API token"),
        ("WHATSAPP_PHONE_NUMBER_ID", "default tenant's WhatsApp phone number id"),
        ("WHATSAPP_APP_SECRET", "default tenant's Meta app secret (checks X-Hub-Signature-256)"),
        ("WHATSAPP_VERIFY_TOKEN", "default tenant's webhook verify token"),
        ("MANYCHAT_API_KEY", "default tenant's ManyChat API key"),
        ("MANYCHAT_WEBHOOK_SECRET", "default tenant's ManyChat shared secret"),
        ("OPENAI_API_KEY", "default tenant's OpenAI-compatible API key"),
        ("TWILIO_API_URL", "Twilio REST base URL (default https://api.twilio.com)"),
        ("ELEVENLABS_API_URL", "ElevenLabs base URL (default https://api.elevenlabs.io)"),
        ("WHATSAPP_API_URL", "WhatsApp Graph API base URL (default https://graph.facebook.com/v25.0)"),
        ("MANYCHAT_API_URL", "ManyChat base URL (default https://api.manychat.com)"),
        ("OPENAI_API_URL", "OpenAI-compatible base URL (default https://api.openai.com/v1)"),
    ]

    /// Loads the configuration. `filePath` wins over `PATCHBAY_CONFIG`; with neither, a single default tenant is
    /// built from the environment.
    public static func load(filePath: String? = nil, environment: [String: String]) throws(ConfigError) -> PatchbayConfig {
        let env = environment.filter { !$0.value.isEmpty }
        let path = filePath ?? env["PATCHBAY_CONFIG"]
        var config: PatchbayConfig
        if let path {
            let key = filePath != nil ? "--config" : "PATCHBAY_CONFIG"
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigError(key: key, "cannot read config file \(path)")
            }
            config = try parseFile(data, environment: env)
        } else {
            config = PatchbayConfig(server: ServerSettings(), dataDirectory: "./data", publicURL: nil, apiKeys: [],
                                    log: LogSettings(), providers: ProviderEndpoints(),
                                    tenants: [Tenant(id: "default", name: "Default")])
        }
        try applyEnvironment(env, to: &config)
        try validate(config)
        if let path = config.media.fallbackPromptPath { config.media.fallbackPrompt = try loadPrompt(path) }
        return config
    }

    // MARK: - Environment

    static func applyEnvironment(_ env: [String: String], to config: inout PatchbayConfig) throws(ConfigError) {
        if let v = env["PATCHBAY_HOST"] { config.server.host = v }
        if let v = env["PATCHBAY_PORT"] { config.server.port = try integer(v, key: "PATCHBAY_PORT", in: 0...65535) }
        if let v = env["PATCHBAY_LOOPS"] { config.server.loops = try integer(v, key: "PATCHBAY_LOOPS", in: 1...256) }
        if let v = env["PATCHBAY_MAX_BODY_BYTES"] {
            config.server.maxBodyBytes = try integer(v, key: "PATCHBAY_MAX_BODY_BYTES", in: 1024...(256 << 20))
        }
        if let v = env["PATCHBAY_WS_MAX_MESSAGE_BYTES"] {
            config.server.maxWebSocketMessageBytes = try integer(v, key: "PATCHBAY_WS_MAX_MESSAGE_BYTES", in: 1024...(16 << 20))
        }
        if let v = env["PATCHBAY_SHUTDOWN_TIMEOUT"] {
            guard let s = Double(v), s.isFinite, s >= 0, s <= 3600 else {
                throw ConfigError(key: "PATCHBAY_SHUTDOWN_TIMEOUT", "must be a number of seconds from 0 to 3600, got \"\(v)\"")
            }
            config.server.shutdownTimeoutSeconds = s
        }
        if let v = env["PATCHBAY_DIAGNOSTIC_ECHO"] {
            switch v.lowercased() {
            case "1", "true", "yes", "on": config.server.diagnosticEcho = true
            case "0", "false", "no", "off": config.server.diagnosticEcho = false
            default: throw ConfigError(key: "PATCHBAY_DIAGNOSTIC_ECHO", "must be true or false, got \"\(v)\"")
            }
        }
        if let v = env["PATCHBAY_MEDIA_MAX_LEAD_MS"] { config.media.maxLeadMillis = try integer(v, key: "PATCHBAY_MEDIA_MAX_LEAD_MS", in: 20...1000) }
        if let v = env["PATCHBAY_MEDIA_MARK_INTERVAL_MS"] {
            config.media.markIntervalMillis = try integer(v, key: "PATCHBAY_MEDIA_MARK_INTERVAL_MS", in: 20...2000)
        }
        if let v = env["PATCHBAY_AGENT_START_TIMEOUT_MS"] {
            config.media.agentStartTimeoutMillis = try integer(v, key: "PATCHBAY_AGENT_START_TIMEOUT_MS", in: 100...60000)
        }
        if let v = env["PATCHBAY_MEDIA_PRE_AGENT_BUFFER_MS"] {
            config.media.preAgentBufferMillis = try integer(v, key: "PATCHBAY_MEDIA_PRE_AGENT_BUFFER_MS", in: 20...60000)
        }
        if let v = env["PATCHBAY_FALLBACK_PROMPT"] { config.media.fallbackPromptPath = v }
        if let v = env["PATCHBAY_WEBHOOK_RETRY_SECONDS"] {
            let parts = v.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.count <= 20, parts.allSatisfy({ $0 != nil && $0! >= 0 && $0! <= 7 * 86400 }) else {
                throw ConfigError(key: "PATCHBAY_WEBHOOK_RETRY_SECONDS", "must be 1 to 20 comma-separated delays in seconds (0 to 604800), got \"\(v)\"")
            }
            config.webhookRetrySeconds = parts.map { $0! }
        }
        if let v = env["PATCHBAY_EVENT_RETENTION_HOURS"] {
            guard let h = Double(v), h.isFinite, h > 0, h <= 24 * 365 else {
                throw ConfigError(key: "PATCHBAY_EVENT_RETENTION_HOURS", "must be a number of hours from 0 to 8760, got \"\(v)\"")
            }
            config.eventRetentionHours = h
        }
        if let v = env["PATCHBAY_TLS_CERT"] { config.server.tlsCertificatePath = v }
        if let v = env["PATCHBAY_TLS_KEY"] { config.server.tlsKeyPath = v }
        if let v = env["PATCHBAY_DATA_DIR"] { config.dataDirectory = v }
        if let v = env["PATCHBAY_PUBLIC_URL"] { config.publicURL = v }
        if let v = env["PATCHBAY_API_KEYS"] {
            config.apiKeys = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let v = env["PATCHBAY_LOG_LEVEL"] { config.log.level = v.lowercased() }
        if let v = env["PATCHBAY_LOG_FORMAT"] {
            guard let f = LogFormat(rawValue: v.lowercased()) else {
                throw ConfigError(key: "PATCHBAY_LOG_FORMAT", "must be human or json, got \"\(v)\"")
            }
            config.log.format = f
        }
        if let v = env["TWILIO_API_URL"] { config.providers.twilio = v }
        if let v = env["ELEVENLABS_API_URL"] { config.providers.elevenLabs = v }
        if let v = env["WHATSAPP_API_URL"] { config.providers.whatsApp = v }
        if let v = env["MANYCHAT_API_URL"] { config.providers.manyChat = v }
        if let v = env["OPENAI_API_URL"] { config.providers.openAI = v }

        var t = config.tenants[0]
        if let v = env["TWILIO_ACCOUNT_SID"] { t.twilio.accountSID = v }
        if let v = env["TWILIO_AUTH_TOKEN"] { t.twilio.authToken = v }
        if let v = env["ELEVENLABS_API_KEY"] { t.elevenLabs.apiKey = v }
        if let v = env["ELEVENLABS_AGENT_ID"] { t.elevenLabs.defaultAgentID = v }
        if let v = env["WHATSAPP_ACCESS_TOKEN"] { t.whatsApp.accessToken = v }
        if let v = env["WHATSAPP_PHONE_NUMBER_ID"] { t.whatsApp.phoneNumberID = v }
        if let v = env["WHATSAPP_APP_SECRET"] { t.whatsApp.appSecret = v }
        if let v = env["WHATSAPP_VERIFY_TOKEN"] { t.whatsApp.verifyToken = v }
        if let v = env["MANYCHAT_API_KEY"] { t.manyChat.apiKey = v }
        if let v = env["MANYCHAT_WEBHOOK_SECRET"] { t.manyChat.webhookSecret = v }
        if let v = env["OPENAI_API_KEY"] { t.openAIKey = v }
        let pusherID = env["PATCHBAY_PUSHER_APP_ID"], pusherKey = env["PATCHBAY_PUSHER_APP_KEY"]
        let pusherSecret = env["PATCHBAY_PUSHER_APP_SECRET"]
        if pusherID != nil || pusherKey != nil || pusherSecret != nil {
            let base = t.pusher
            guard let id = pusherID ?? base?.appID else {
                throw ConfigError(key: "PATCHBAY_PUSHER_APP_ID", "is required when PATCHBAY_PUSHER_APP_KEY or _SECRET is set")
            }
            guard let key = pusherKey ?? base?.key else {
                throw ConfigError(key: "PATCHBAY_PUSHER_APP_KEY", "is required when PATCHBAY_PUSHER_APP_ID or _SECRET is set")
            }
            guard let secret = pusherSecret ?? base?.secret else {
                throw ConfigError(key: "PATCHBAY_PUSHER_APP_SECRET", "is required when PATCHBAY_PUSHER_APP_ID or _KEY is set")
            }
            t.pusher = PusherApp(appID: id, key: key, secret: secret, encryptionMasterKey: base?.encryptionMasterKey,
                                 maxConnections: base?.maxConnections ?? 0, webhookURL: base?.webhookURL)
        }
        let masterKey = env["PATCHBAY_PUSHER_ENCRYPTION_MASTER_KEY"], maxConnections = env["PATCHBAY_PUSHER_MAX_CONNECTIONS"]
        let webhookURL = env["PATCHBAY_PUSHER_WEBHOOK_URL"]
        for (name, value) in [("PATCHBAY_PUSHER_ENCRYPTION_MASTER_KEY", masterKey), ("PATCHBAY_PUSHER_MAX_CONNECTIONS", maxConnections),
                              ("PATCHBAY_PUSHER_WEBHOOK_URL", webhookURL)] where value != nil && t.pusher == nil {
            throw ConfigError(key: name, "needs a Pusher app (PATCHBAY_PUSHER_APP_ID, _KEY, _SECRET)")
        }
        if t.pusher != nil {
            if let webhookURL { t.pusher?.webhookURL = try PusherApp.webhookURL(webhookURL, key: "PATCHBAY_PUSHER_WEBHOOK_URL") }
            if let masterKey { t.pusher?.encryptionMasterKey = try PusherApp.masterKey(masterKey, key: "PATCHBAY_PUSHER_ENCRYPTION_MASTER_KEY") }
            if let maxConnections { t.pusher?.maxConnections = try integer(maxConnections, key: "PATCHBAY_PUSHER_MAX_CONNECTIONS", in: 0...10_000_000) }
        }
        config.tenants[0] = t
    }

    static func integer(_ text: String, key: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let v = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(v) else {
            throw ConfigError(key: key, "must be an integer from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
        }
        return v
    }

    /// A WAV prompt as mu-law 8 kHz mono.
    static func loadPrompt(_ path: String) throws(ConfigError) -> [UInt8] {
        do {
            guard let data = FileManager.default.contents(atPath: path) else { throw ConfigError(key: "PATCHBAY_FALLBACK_PROMPT", "cannot read \(path)") }
            let wav = try WAVAudio(parsing: [UInt8](data))
            var mono = wav.samples
            if wav.channels > 1 { mono = stride(from: 0, to: mono.count, by: wav.channels).map { wav.samples[$0] } }
            if wav.sampleRate != 8000 {
                let r = try Resampler(inputRate: wav.sampleRate, outputRate: 8000, quality: 5)
                var out = [Int16](repeating: 0, count: r.outputCapacity(forInput: mono.count))
                let (_, n) = mono.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { r.process(src, into: $0) } }
                mono = Array(out[0..<n])
            }
            guard !mono.isEmpty else { throw ConfigError(key: "PATCHBAY_FALLBACK_PROMPT", "\(path) holds no audio") }
            return MuLaw.encode(mono)
        } catch let e as ConfigError {
            throw e
        } catch {
            throw ConfigError(key: "PATCHBAY_FALLBACK_PROMPT", "\(path) is not a usable PCM16 WAV file: \(error)")
        }
    }

    // MARK: - Validation

    static let logLevels: Set<String> = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    static func validate(_ c: PatchbayConfig) throws(ConfigError) {
        guard logLevels.contains(c.log.level) else {
            throw ConfigError(key: "PATCHBAY_LOG_LEVEL", "must be one of \(logLevels.sorted().joined(separator: ", ")), got \"\(c.log.level)\"")
        }
        if let url = c.publicURL {
            guard let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme),
                  let host = u.host, !host.isEmpty, u.query == nil, u.fragment == nil else {
                throw ConfigError(key: "PATCHBAY_PUBLIC_URL", "must be an absolute http(s) URL with no query or fragment, got \"\(url)\"")
            }
        }
        for (key, url) in [("TWILIO_API_URL", c.providers.twilio), ("ELEVENLABS_API_URL", c.providers.elevenLabs),
                           ("WHATSAPP_API_URL", c.providers.whatsApp), ("MANYCHAT_API_URL", c.providers.manyChat),
                           ("OPENAI_API_URL", c.providers.openAI)] {
            let allowed: Set<String> = key == "ELEVENLABS_API_URL" ? ["http", "https", "ws", "wss"] : ["http", "https"]
            guard let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(), allowed.contains(scheme),
                  let host = u.host, !host.isEmpty else {
                throw ConfigError(key: key, "must be an absolute \(allowed.sorted().joined(separator: "/")) URL, got \"\(url)\"")
            }
        }
        if (c.server.tlsCertificatePath == nil) != (c.server.tlsKeyPath == nil) {
            throw ConfigError(key: c.server.tlsCertificatePath == nil ? "PATCHBAY_TLS_CERT" : "PATCHBAY_TLS_KEY",
                              "PATCHBAY_TLS_CERT and PATCHBAY_TLS_KEY go together")
        }
        for (key, path) in [("PATCHBAY_TLS_CERT", c.server.tlsCertificatePath), ("PATCHBAY_TLS_KEY", c.server.tlsKeyPath)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw ConfigError(key: key, "cannot read \(path)")
            }
        }
        if let path = c.media.fallbackPromptPath, !FileManager.default.isReadableFile(atPath: path) {
            throw ConfigError(key: "PATCHBAY_FALLBACK_PROMPT", "cannot read \(path)")
        }
        if c.dataDirectory.isEmpty { throw ConfigError(key: "PATCHBAY_DATA_DIR", "must not be empty") }
        for (i, key) in c.apiKeys.enumerated() where key.count < 16 {
            throw ConfigError(key: "PATCHBAY_API_KEYS", "key \(i + 1) is shorter than 16 characters; use long random keys")
        }

        var ids = Set<String>(), numbers = [String: String](), pusherKeys = [String: String](), pusherIDs = [String: String]()
        for (i, t) in c.tenants.enumerated() {
            let at = "tenants[\(i)]"
            guard !t.id.isEmpty, t.id.count <= 64,
                  t.id.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }) else {
                throw ConfigError(key: "\(at).id", "must be 1 to 64 characters of a-z, 0-9, - and _, got \"\(t.id)\"")
            }
            guard ids.insert(t.id).inserted else { throw ConfigError(key: "\(at).id", "duplicate tenant id \"\(t.id)\"") }
            for (j, n) in t.numbers.enumerated() {
                guard isE164(n) else { throw ConfigError(key: "\(at).numbers[\(j)]", "must be an E.164 number like +34910000000, got \"\(n)\"") }
                if let other = numbers[n] { throw ConfigError(key: "\(at).numbers[\(j)]", "\(n) already belongs to tenant \(other)") }
                numbers[n] = t.id
            }
            for n in t.elevenLabs.agentsByNumber.keys.sorted() where !t.numbers.contains(n) {
                throw ConfigError(key: "\(at).elevenlabs.agents", "\(n) is not one of this tenant's numbers")
            }
            if let p = t.pusher {
                let keyName = i == 0 ? "PATCHBAY_PUSHER_APP" : "\(at).pusher"
                guard !p.appID.isEmpty, !p.key.isEmpty, !p.secret.isEmpty else {
                    throw ConfigError(key: keyName, "app id, key and secret must all be non-empty")
                }
                if let other = pusherKeys[p.key] { throw ConfigError(key: "\(keyName).key", "Pusher key already used by tenant \(other)") }
                if let other = pusherIDs[p.appID] { throw ConfigError(key: "\(keyName).app_id", "Pusher app id already used by tenant \(other)") }
                pusherKeys[p.key] = t.id
                pusherIDs[p.appID] = t.id
            }
        }
    }

    /// `+` then 8 to 15 digits, the first not 0 (ITU-T E.164).
    static func isE164(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard u.count >= 9, u.count <= 16, u[0] == UInt8(ascii: "+"), u[1] != UInt8(ascii: "0") else { return false }
        return u.dropFirst().allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }
}
