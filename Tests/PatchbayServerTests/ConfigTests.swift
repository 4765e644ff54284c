import Foundation
import Testing
@testable import PatchbayServer

/// Writes `text` to a fresh temporary file and returns its path.
func temporaryFile(_ text: String, suffix: String = ".json") -> String {
    let path = NSTemporaryDirectory() + "patchbay-test-\(UInt64.random(in: 0...UInt64.max))\(suffix)"
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    return path
}

@Suite("Configuration")
struct ConfigTests {
    @Test("With no file and no environment, one default tenant on port 8080 with the embedded defaults")
    func defaults() throws {
        let c = try ConfigLoader.load(environment: [:])
        #expect(c.server.port == 8080)
        #expect(c.server.host == "0.0.0.0")
        #expect(c.server.loops >= 1)
        #expect(c.dataDirectory == "./data")
        #expect(c.tenants.map(\.id) == ["default"])
        #expect(c.providers.twilio == "https://api.twilio.com")
        #expect(c.log.format == .human)
    }

    @Test("The environment fills the default tenant and the server settings")
    func environment() throws {
        let c = try ConfigLoader.load(environment: [
            "PATCHBAY_PORT": "9090", "PATCHBAY_LOOPS": "3", "PATCHBAY_DATA_DIR": "/var/lib/patchbay",
            "PATCHBAY_PUBLIC_URL": "https://gw.example.com", "PATCHBAY_API_KEYS": "0123456789abcdef0123, fedcba9876543210fedc",
            "PATCHBAY_PUSHER_APP_ID": "42", "PATCHBAY_PUSHER_APP_KEY": "k", "PATCHBAY_PUSHER_APP_SECRET": "s",
            "PATCHBAY_PUSHER_ENCRYPTION_MASTER_KEY": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=", "PATCHBAY_PUSHER_MAX_CONNECTIONS": "5000",
            "PATCHBAY_PUSHER_WEBHOOK_URL": "https://hooks.example.com/pusher", "PATCHBAY_MEDIA_PRE_AGENT_BUFFER_MS": "2000",
            "TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "tok", "ELEVENLABS_AGENT_ID": "agent_1",
            "TWILIO_API_URL": "http://127.0.0.1:9999", "ELEVENLABS_API_URL": "ws://127.0.0.1:9998",
            "PATCHBAY_LOG_FORMAT": "JSON", "PATCHBAY_LOG_LEVEL": "debug",
        ])
        #expect(c.server.port == 9090)
        #expect(c.server.loops == 3)
        #expect(c.dataDirectory == "/var/lib/patchbay")
        #expect(c.publicURL == "https://gw.example.com")
        #expect(c.apiKeys == ["0123456789abcdef0123", "fedcba9876543210fedc"])
        #expect(c.defaultTenant.pusher == PusherApp(appID: "42", key: "k", secret: "s", encryptionMasterKey: Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ456789".utf8),
                                                   maxConnections: 5000, webhookURL: "https://hooks.example.com/pusher"))
        #expect(c.media.preAgentBufferMillis == 2000)
        #expect(c.defaultTenant.twilio.accountSID == "AC123")
        #expect(c.defaultTenant.twilio.authToken == "tok")
        #expect(c.defaultTenant.elevenLabs.defaultAgentID == "agent_1")
        #expect(c.providers.twilio == "http://127.0.0.1:9999")
        #expect(c.providers.elevenLabs == "ws://127.0.0.1:9998")
        #expect(c.log == LogSettings(level: "debug", format: .json))
    }

    struct BadValue: CustomTestStringConvertible, Sendable {
        var env: [String: String]
        var key: String
        var testDescription: String { "\(env) is refused naming \(key)" }
    }

    @Test("A bad environment value is refused with an error naming its key", arguments: [
        BadValue(env: ["PATCHBAY_PORT": "eighty"], key: "PATCHBAY_PORT"),
        BadValue(env: ["PATCHBAY_PORT": "70000"], key: "PATCHBAY_PORT"),
        BadValue(env: ["PATCHBAY_LOOPS": "0"], key: "PATCHBAY_LOOPS"),
        BadValue(env: ["PATCHBAY_MAX_BODY_BYTES": "-1"], key: "PATCHBAY_MAX_BODY_BYTES"),
        BadValue(env: ["PATCHBAY_LOG_FORMAT": "xml"], key: "PATCHBAY_LOG_FORMAT"),
        BadValue(env: ["PATCHBAY_LOG_LEVEL": "loud"], key: "PATCHBAY_LOG_LEVEL"),
        BadValue(env: ["PATCHBAY_PUBLIC_URL": "gw.example.com"], key: "PATCHBAY_PUBLIC_URL"),
        BadValue(env: ["PATCHBAY_PUBLIC_URL": "https://gw.example.com/?a=b"], key: "PATCHBAY_PUBLIC_URL"),
        BadValue(env: ["TWILIO_API_URL": "ftp://x"], key: "TWILIO_API_URL"),
        BadValue(env: ["WHATSAPP_API_URL": "ws://x"], key: "WHATSAPP_API_URL"),
        BadValue(env: ["PATCHBAY_SHUTDOWN_TIMEOUT": "soon"], key: "PATCHBAY_SHUTDOWN_TIMEOUT"),
        BadValue(env: ["PATCHBAY_PUSHER_APP_KEY": "k"], key: "PATCHBAY_PUSHER_APP_ID"),
        BadValue(env: ["PATCHBAY_PUSHER_MAX_CONNECTIONS": "10"], key: "PATCHBAY_PUSHER_MAX_CONNECTIONS"),
        BadValue(env: ["PATCHBAY_PUSHER_APP_ID": "1", "PATCHBAY_PUSHER_APP_KEY": "k", "PATCHBAY_PUSHER_APP_SECRET": "s",
                       "PATCHBAY_PUSHER_ENCRYPTION_MASTER_KEY": "c2hvcnQ="], key: "PATCHBAY_PUSHER_ENCRYPTION_MASTER_KEY"),
        BadValue(env: ["PATCHBAY_PUSHER_APP_ID": "1", "PATCHBAY_PUSHER_APP_KEY": "k", "PATCHBAY_PUSHER_APP_SECRET": "s",
                       "PATCHBAY_PUSHER_WEBHOOK_URL": "hooks.example.com"], key: "PATCHBAY_PUSHER_WEBHOOK_URL"),
        BadValue(env: ["PATCHBAY_PUSHER_APP_ID": "1", "PATCHBAY_PUSHER_APP_KEY": "k", "PATCHBAY_PUSHER_APP_SECRET": "s",
                       "PATCHBAY_PUSHER_MAX_CONNECTIONS": "many"], key: "PATCHBAY_PUSHER_MAX_CONNECTIONS"),
        BadValue(env: ["PATCHBAY_MEDIA_PRE_AGENT_BUFFER_MS": "0"], key: "PATCHBAY_MEDIA_PRE_AGENT_BUFFER_MS"),
        BadValue(env: ["PATCHBAY_API_KEYS": "short"], key: "PATCHBAY_API_KEYS"),
        BadValue(env: ["PATCHBAY_TLS_CERT": "/nonexistent.pem"], key: "PATCHBAY_TLS_KEY"),
        BadValue(env: ["PATCHBAY_TLS_CERT": "/nonexistent.pem", "PATCHBAY_TLS_KEY": "/nonexistent.key"], key: "PATCHBAY_TLS_CERT"),
        BadValue(env: ["PATCHBAY_CONFIG": "/nonexistent/patchbay.json"], key: "PATCHBAY_CONFIG"),
    ])
    func badEnvironment(_ case_: BadValue) {
        #expect(throws: ConfigError.self) { try ConfigLoader.load(environment: case_.env) }
        do { _ = try ConfigLoader.load(environment: case_.env) } catch { #expect(error.key == case_.key, "\(error)") }
    }

    @Test("A config file defines tenants; env: references read secrets; the environment overrides the first tenant")
    func file() throws {
        let path = temporaryFile("""
        {
          "server": {"port": 7000, "loops": 2, "max_body_bytes": 2048},
          "public_url": "https://gw.example.com",
          "api_keys": ["env:ACME_API_KEY"],
          "log": {"level": "warning", "format": "json"},
          "providers": {"twilio": "http://127.0.0.1:1"},
          "tenants": [
            {"id": "acme", "name": "Acme Clinic", "numbers": ["+34910000000", "+34910000001"],
             "twilio": {"account_sid": "AC1", "auth_token": "env:ACME_TWILIO_TOKEN"},
             "elevenlabs": {"agent_id": "agent_a", "agents": {"+34910000001": "agent_b"}},
             "pusher": {"app_id": "1", "key": "acme-key", "secret": "acme-secret"}},
            {"id": "beta", "numbers": ["+15550000000"], "pusher": {"app_id": "2", "key": "beta-key", "secret": "x", "max_connections": 300,
             "webhook_url": "https://beta.example.com/pusher", "encryption_master_key_base64": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="}}
          ]
        }
        """)
        let c = try ConfigLoader.load(filePath: path, environment: [
            "ACME_API_KEY": "a-very-long-api-key-123", "ACME_TWILIO_TOKEN": "secret-token", "PATCHBAY_PORT": "7001",
        ])
        #expect(c.server.port == 7001) // environment wins
        #expect(c.server.loops == 2)
        #expect(c.server.maxBodyBytes == 2048)
        #expect(c.apiKeys == ["a-very-long-api-key-123"])
        #expect(c.log == LogSettings(level: "warning", format: .json))
        #expect(c.providers.twilio == "http://127.0.0.1:1")
        #expect(c.tenants.map(\.id) == ["acme", "beta"])
        #expect(c.tenants[0].twilio.authToken == "secret-token")
        #expect(c.tenants[0].elevenLabs.agentsByNumber == ["+34910000001": "agent_b"])
        #expect(c.tenants[1].name == "beta")
        #expect(c.tenants[1].pusher?.key == "beta-key")
        #expect(c.tenants[1].pusher?.maxConnections == 300 && c.tenants[1].pusher?.webhookURL == "https://beta.example.com/pusher")
        #expect(c.tenants[1].pusher?.encryptionMasterKey?.count == 32)
    }

    struct BadFile: CustomTestStringConvertible, Sendable {
        var json: String
        var key: String
        var testDescription: String { "file refused naming \(key)" }
    }

    @Test("A bad config file is refused with an error naming the path of the bad value", arguments: [
        BadFile(json: "{", key: "config file"),
        BadFile(json: "[]", key: "config file"),
        BadFile(json: #"{"sever": {}}"#, key: "sever"),
        BadFile(json: #"{"server": {"port": "80"}}"#, key: "server.port"),
        BadFile(json: #"{"server": {"port": true}}"#, key: "server.port"),
        BadFile(json: #"{"server": {"loops": 1.5}}"#, key: "server.loops"),
        BadFile(json: #"{"tenants": [{"name": "x"}]}"#, key: "tenants[0].id"),
        BadFile(json: #"{"tenants": [{"id": "Acme Inc"}]}"#, key: "tenants[0].id"),
        BadFile(json: #"{"tenants": [{"id": "a"}, {"id": "a"}]}"#, key: "tenants[1].id"),
        BadFile(json: #"{"tenants": [{"id": "a", "numbers": ["910000000"]}]}"#, key: "tenants[0].numbers[0]"),
        BadFile(json: #"{"tenants": [{"id": "a", "numbers": ["+34910000000"]}, {"id": "b", "numbers": ["+34910000000"]}]}"#, key: "tenants[1].numbers[0]"),
        BadFile(json: #"{"tenants": [{"id": "a", "twilio": {"auth_token": "env:NOT_SET_ANYWHERE"}}]}"#, key: "tenants[0].twilio.auth_token"),
        BadFile(json: #"{"tenants": [{"id": "a", "twilio": {"token": "x"}}]}"#, key: "tenants[0].twilio.token"),
        BadFile(json: #"{"tenants": [{"id": "a", "pusher": {"app_id": "1", "key": "k"}}]}"#, key: "tenants[0].pusher.secret"),
        BadFile(json: #"{"tenants": [{"id": "a", "pusher": {"app_id": "1", "key": "k", "secret": "s", "encryption_master_key_base64": "eA=="}}]}"#,
                key: "tenants[0].pusher.encryption_master_key_base64"),
        BadFile(json: #"{"tenants": [{"id": "a", "pusher": {"app_id": "1", "key": "k", "secret": "s", "webhook_url": "nope"}}]}"#,
                key: "tenants[0].pusher.webhook_url"),
        BadFile(json: #"{"tenants": [{"id": "a", "pusher": {"app_id": "1", "key": "k", "secret": "s"}}, {"id": "b", "pusher": {"app_id": "2", "key": "k", "secret": "s"}}]}"#, key: "tenants[1].pusher.key"),
        BadFile(json: #"{"tenants": [{"id": "a", "elevenlabs": {"agents": {"+34910000009": "x"}}}]}"#, key: "tenants[0].elevenlabs.agents"),
    ])
    func badFile(_ case_: BadFile) {
        let path = temporaryFile(case_.json)
        do {
            _ = try ConfigLoader.load(filePath: path, environment: [:])
            Issue.record("accepted \(case_.json)")
        } catch {
            #expect(error.key == case_.key, "\(error)")
        }
    }

    @Test("The summary never prints a secret")
    func summaryRedacts() throws {
        let c = try ConfigLoader.load(environment: [
            "TWILIO_AUTH_TOKEN": "super-secret-token", "PATCHBAY_PUSHER_APP_ID": "1", "PATCHBAY_PUSHER_APP_KEY": "key",
            "PATCHBAY_PUSHER_APP_SECRET": "pusher-secret-value", "WHATSAPP_APP_SECRET": "meta-secret-value",
        ])
        let text = c.summaryLines().joined(separator: "\n")
        for secret in ["super-secret-token", "pusher-secret-value", "meta-secret-value"] { #expect(!text.contains(secret)) }
        #expect(text.contains("auth_token=(set)"))
    }

    @Test("The documented environment list names every variable PRODUCT.md fixes")
    func documentedVariables() {
        let names = Set(ConfigLoader.environmentVariables.map(\.name))
        for required in ["PATCHBAY_PORT", "PATCHBAY_DATA_DIR", "PATCHBAY_PUBLIC_URL", "PATCHBAY_API_KEYS", "PATCHBAY_PUSHER_APP_ID",
                         "PATCHBAY_PUSHER_APP_KEY", "PATCHBAY_PUSHER_APP_SECRET", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
                         "ELEVENLABS_API_KEY", "ELEVENLABS_AGENT_ID", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID",
                         "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "MANYCHAT_API_KEY", "MANYCHAT_WEBHOOK_SECRET",
                         "OPENAI_API_KEY", "TWILIO_API_URL", "ELEVENLABS_API_URL", "WHATSAPP_API_URL", "MANYCHAT_API_URL",
                         "OPENAI_API_URL", "PATCHBAY_LOG_FORMAT"] {
            #expect(names.contains(required), "\(required)")
        }
    }
}

@Suite("Shipped configuration files")
struct ShippedConfigTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test(".env.example lists every environment variable Patchbay reads")
    func envExample() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent(".env.example"), encoding: .utf8)
        let listed = Set(text.split(separator: "\n").compactMap { line -> String? in
            guard !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { return nil }
            return String(line[..<eq])
        })
        #expect(listed == Set(ConfigLoader.environmentVariables.map(\.name)))
    }

    @Test("deploy/patchbay.example.json loads when its env: secrets are set")
    func exampleFile() throws {
        let path = Self.root.appendingPathComponent("deploy/patchbay.example.json").path
        let c = try ConfigLoader.load(filePath: path, environment: [
            "ACME_TWILIO_AUTH_TOKEN": "t", "ACME_ELEVENLABS_API_KEY": "k", "ACME_PUSHER_SECRET": "s", "ACME_WHATSAPP_TOKEN": "w",
            "ACME_WHATSAPP_APP_SECRET": "a", "ACME_WHATSAPP_VERIFY_TOKEN": "v", "PATCHBAY_API_KEY_DASHBOARD": "0123456789abcdef-dashboard",
            "BETA_TWILIO_AUTH_TOKEN": "t2", "BETA_PUSHER_SECRET": "s2",
        ])
        #expect(c.tenants.count == 2)
    }
}
