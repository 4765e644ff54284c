// A printable summary of a configuration with every secret redacted (for `patchbay config check`).

extension PatchbayConfig {
    /// Human-readable lines describing the configuration; secrets show only whether they are set.
    public func summaryLines() -> [String] {
        func secret(_ s: String?) -> String { s == nil ? "(not set)" : "(set)" }
        func plain(_ s: String?) -> String { s ?? "(not set)" }
        var lines = [
            "listen: \(server.host):\(server.port) with \(server.loops) event loop(s)\(server.tlsCertificatePath != nil ? ", TLS" : "")",
            "max body: \(server.maxBodyBytes) bytes; max WebSocket message: \(server.maxWebSocketMessageBytes) bytes; diagnostic echo: \(server.diagnosticEcho ? "on" : "off")",
            "data dir: \(dataDirectory)",
            "public URL: \(plain(publicURL))",
            "API keys: \(apiKeys.count)",
            "log: \(log.level), \(log.format.rawValue)",
            "providers: twilio=\(providers.twilio) elevenlabs=\(providers.elevenLabs) whatsapp=\(providers.whatsApp) manychat=\(providers.manyChat) openai=\(providers.openAI)",
        ]
        for t in tenants {
            lines.append("tenant \(t.id) (\(t.name)): numbers=\(t.numbers.isEmpty ? "none" : t.numbers.joined(separator: ","))")
            lines.append("  twilio: account=\(plain(t.twilio.accountSID)) auth_token=\(secret(t.twilio.authToken))")
            lines.append("  elevenlabs: api_key=\(secret(t.elevenLabs.apiKey)) agent=\(plain(t.elevenLabs.defaultAgentID)) per-number agents=\(t.elevenLabs.agentsByNumber.count)")
            lines.append("  whatsapp: phone_number_id=\(plain(t.whatsApp.phoneNumberID)) access_token=\(secret(t.whatsApp.accessToken)) app_secret=\(secret(t.whatsApp.appSecret)) verify_token=\(secret(t.whatsApp.verifyToken))")
            lines.append("  manychat: api_key=\(secret(t.manyChat.apiKey)) webhook_secret=\(secret(t.manyChat.webhookSecret))")
            lines.append("  openai: api_key=\(secret(t.openAIKey))")
            if let p = t.pusher {
                lines.append("  pusher: app_id=\(p.appID) key=\(p.key) secret=(set) encryption_master_key=\(p.encryptionMasterKey == nil ? "(none)" : "(set)")"
                             + " max_connections=\(p.maxConnections == 0 ? "unlimited" : String(p.maxConnections)) webhook_url=\(p.webhookURL ?? "(none)")")
            } else {
                lines.append("  pusher: (no app)")
            }
        }
        return lines
    }

    /// What an operator should look at before going live (none of them stops start-up).
    public func warnings() -> [String] {
        var w: [String] = []
        if publicURL == nil { w.append("PATCHBAY_PUBLIC_URL is not set: TwiML stream URLs and Twilio/Meta signature checks need it") }
        if apiKeys.isEmpty { w.append("PATCHBAY_API_KEYS is empty: /api/v1 refuses every request") }
        for t in tenants {
            if t.twilio.authToken == nil { w.append("tenant \(t.id): no Twilio auth token: Twilio webhooks will be refused (403)") }
            if t.elevenLabs.defaultAgentID == nil && t.elevenLabs.agentsByNumber.isEmpty { w.append("tenant \(t.id): no ElevenLabs agent: calls play the fallback prompt") }
        }
        return w
    }
}
