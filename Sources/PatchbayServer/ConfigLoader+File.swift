// The JSON config file: a strict reader that names the path of every bad value (`tenants[0].twilio.auth_token`).
import Foundation

extension ConfigLoader {
    /// A JSON object being read, with its path for error messages and the keys not yet consumed.
    struct Node {
        let path: String
        let object: [String: Any]
        let environment: [String: String]

        func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

        /// Refuses keys this reader does not know, so a typo is an error instead of a silently ignored setting.
        func allowOnly(_ keys: Set<String>) throws(ConfigError) {
            for key in object.keys.sorted() where !keys.contains(key) {
                throw ConfigError(key: child(key), "unknown key (expected one of: \(keys.sorted().joined(separator: ", ")))")
            }
        }

        func string(_ key: String) throws(ConfigError) -> String? {
            guard let raw = object[key], !(raw is NSNull) else { return nil }
            guard let s = raw as? String else { throw ConfigError(key: child(key), "must be a string") }
            // "env:NAME" reads the value from the environment so secrets stay out of the file.
            if s.hasPrefix("env:") {
                let name = String(s.dropFirst(4))
                guard let v = environment[name] else {
                    throw ConfigError(key: child(key), "refers to environment variable \(name), which is not set")
                }
                return v
            }
            return s
        }

        func int(_ key: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int? {
            guard let raw = object[key], !(raw is NSNull) else { return nil }
            guard let n = raw as? NSNumber, !(raw is Bool),
                  let v = Int(exactly: n.doubleValue), range.contains(v) else {
                throw ConfigError(key: child(key), "must be an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return v
        }

        func double(_ key: String, in range: ClosedRange<Double>) throws(ConfigError) -> Double? {
            guard let raw = object[key], !(raw is NSNull) else { return nil }
            guard let n = raw as? NSNumber, !(raw is Bool), range.contains(n.doubleValue) else {
                throw ConfigError(key: child(key), "must be a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return n.doubleValue
        }

        func strings(_ key: String) throws(ConfigError) -> [String]? {
            guard let raw = object[key], !(raw is NSNull) else { return nil }
            guard let list = raw as? [Any] else { throw ConfigError(key: child(key), "must be a list of strings") }
            var out: [String] = []
            for (i, item) in list.enumerated() {
                let node = Node(path: "\(child(key))[\(i)]", object: ["v": item], environment: environment)
                guard let s = try node.string("v") else { throw ConfigError(key: node.path, "must be a string") }
                out.append(s)
            }
            return out
        }

        func object(_ key: String) throws(ConfigError) -> Node? {
            guard let raw = object[key], !(raw is NSNull) else { return nil }
            guard let o = raw as? [String: Any] else { throw ConfigError(key: child(key), "must be an object") }
            return Node(path: child(key), object: o, environment: environment)
        }

        func objects(_ key: String) throws(ConfigError) -> [Node]? {
            guard let raw = object[key], !(raw is NSNull) else { return nil }
            guard let list = raw as? [Any] else { throw ConfigError(key: child(key), "must be a list of objects") }
            var out: [Node] = []
            for (i, item) in list.enumerated() {
                guard let o = item as? [String: Any] else { throw ConfigError(key: "\(child(key))[\(i)]", "must be an object") }
                out.append(Node(path: "\(child(key))[\(i)]", object: o, environment: environment))
            }
            return out
        }
    }

    static func parseFile(_ data: Data, environment: [String: String]) throws(ConfigError) -> PatchbayConfig {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw ConfigError(key: "config file", "is not valid JSON: \((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)")")
        }
        guard let top = parsed as? [String: Any] else { throw ConfigError(key: "config file", "must be a JSON object") }
        let root = Node(path: "", object: top, environment: environment)
        try root.allowOnly(["server", "data_dir", "public_url", "api_keys", "log", "providers", "media", "tenants"])

        var server = ServerSettings()
        if let s = try root.object("server") {
            try s.allowOnly(["host", "port", "loops", "max_body_bytes", "max_ws_message_bytes", "shutdown_timeout_seconds", "tls_cert", "tls_key", "diagnostic_echo"])
            if let v = try s.string("host") { server.host = v }
            if let v = try s.int("port", in: 0...65535) { server.port = v }
            if let v = try s.int("loops", in: 1...256) { server.loops = v }
            if let v = try s.int("max_body_bytes", in: 1024...(256 << 20)) { server.maxBodyBytes = v }
            if let v = try s.int("max_ws_message_bytes", in: 1024...(16 << 20)) { server.maxWebSocketMessageBytes = v }
            if let v = try s.double("shutdown_timeout_seconds", in: 0...3600) { server.shutdownTimeoutSeconds = v }
            if let raw = s.object["diagnostic_echo"] {
                guard let b = raw as? Bool else { throw ConfigError(key: s.child("diagnostic_echo"), "must be true or false") }
                server.diagnosticEcho = b
            }
            server.tlsCertificatePath = try s.string("tls_cert")
            server.tlsKeyPath = try s.string("tls_key")
        }
        var log = LogSettings()
        if let l = try root.object("log") {
            try l.allowOnly(["level", "format"])
            if let v = try l.string("level") { log.level = v.lowercased() }
            if let v = try l.string("format") {
                guard let f = LogFormat(rawValue: v.lowercased()) else { throw ConfigError(key: l.child("format"), "must be human or json") }
                log.format = f
            }
        }
        var providers = ProviderEndpoints()
        if let p = try root.object("providers") {
            try p.allowOnly(["twilio", "elevenlabs", "whatsapp", "manychat", "openai"])
            if let v = try p.string("twilio") { providers.twilio = v }
            if let v = try p.string("elevenlabs") { providers.elevenLabs = v }
            if let v = try p.string("whatsapp") { providers.whatsApp = v }
            if let v = try p.string("manychat") { providers.manyChat = v }
            if let v = try p.string("openai") { providers.openAI = v }
        }
        var media = MediaSettings()
        if let m = try root.object("media") {
            try m.allowOnly(["max_lead_ms", "mark_interval_ms", "agent_start_timeout_ms", "pre_agent_buffer_ms", "fallback_prompt"])
            if let v = try m.int("max_lead_ms", in: 20...1000) { media.maxLeadMillis = v }
            if let v = try m.int("mark_interval_ms", in: 20...2000) { media.markIntervalMillis = v }
            if let v = try m.int("agent_start_timeout_ms", in: 100...60000) { media.agentStartTimeoutMillis = v }
            if let v = try m.int("pre_agent_buffer_ms", in: 20...60000) { media.preAgentBufferMillis = v }
            media.fallbackPromptPath = try m.string("fallback_prompt")
        }
        var tenants: [Tenant] = []
        for t in try root.objects("tenants") ?? [] { tenants.append(try parseTenant(t)) }
        if tenants.isEmpty { tenants = [Tenant(id: "default", name: "Default")] }

        var config = PatchbayConfig(server: server, dataDirectory: try root.string("data_dir") ?? "./data",
                                    publicURL: try root.string("public_url"), apiKeys: try root.strings("api_keys") ?? [],
                                    log: log, providers: providers, tenants: tenants)
        config.media = media
        return config
    }

    static func parseTenant(_ n: Node) throws(ConfigError) -> Tenant {
        try n.allowOnly(["id", "name", "numbers", "twilio", "elevenlabs", "whatsapp", "manychat", "openai_api_key", "pusher"])
        guard let id = try n.string("id") else { throw ConfigError(key: n.child("id"), "is required") }
        var t = Tenant(id: id, name: try n.string("name") ?? id)
        t.numbers = try n.strings("numbers") ?? []
        if let o = try n.object("twilio") {
            try o.allowOnly(["account_sid", "auth_token"])
            t.twilio = TwilioCredentials(accountSID: try o.string("account_sid"), authToken: try o.string("auth_token"))
        }
        if let o = try n.object("elevenlabs") {
            try o.allowOnly(["api_key", "agent_id", "agents"])
            t.elevenLabs.apiKey = try o.string("api_key")
            t.elevenLabs.defaultAgentID = try o.string("agent_id")
            if let agents = try o.object("agents") {
                for key in agents.object.keys.sorted() {
                    guard let agent = try agents.string(key) else { continue }
                    t.elevenLabs.agentsByNumber[key] = agent
                }
            }
        }
        if let o = try n.object("whatsapp") {
            try o.allowOnly(["access_token", "phone_number_id", "app_secret", "verify_token"])
            t.whatsApp = WhatsAppCredentials(accessToken: try o.string("access_token"), phoneNumberID: try o.string("phone_number_id"),
                                             appSecret: try o.string("app_secret"), verifyToken: try o.string("verify_token"))
        }
        if let o = try n.object("manychat") {
            try o.allowOnly(["api_key", "webhook_secret"])
            t.manyChat = ManyChatCredentials(apiKey: try o.string("api_key"), webhookSecret: try o.string("webhook_secret"))
        }
        t.openAIKey = try n.string("openai_api_key")
        if let o = try n.object("pusher") {
            try o.allowOnly(["app_id", "key", "secret", "encryption_master_key_base64", "max_connections", "webhook_url"])
            guard let appID = try o.string("app_id") else { throw ConfigError(key: o.child("app_id"), "is required") }
            guard let key = try o.string("key") else { throw ConfigError(key: o.child("key"), "is required") }
            guard let secret = try o.string("secret") else { throw ConfigError(key: o.child("secret"), "is required") }
            var app = PusherApp(appID: appID, key: key, secret: secret)
            if let m = try o.string("encryption_master_key_base64") {
                app.encryptionMasterKey = try PusherApp.masterKey(m, key: o.child("encryption_master_key_base64"))
            }
            app.maxConnections = try o.int("max_connections", in: 0...10_000_000) ?? 0
            if let url = try o.string("webhook_url") { app.webhookURL = try PusherApp.webhookURL(url, key: o.child("webhook_url")) }
            t.pusher = app
        }
        return t
    }
}
