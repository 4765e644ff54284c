// The outbox survives SIGKILL: a real `patchbay serve` process is killed while deliveries are in flight, restarted
// on the same data directory, and every event still reaches the receiver (at least once, same webhook-id).
import Foundation
import HTTPClient
import Logging
import Signing
import Testing
import TestSupport
import WireFormats
import EventPlane

@Suite("Outgoing webhooks across SIGKILL", .serialized)
struct WebhookCrashTests {
    static var binary: String { repositoryRoot.appendingPathComponent(".build/debug/patchbay").path }

    func serve(port: Int, data: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["serve"]
        p.environment = ["PATCHBAY_PORT": String(port), "PATCHBAY_HOST": "127.0.0.1", "PATCHBAY_DATA_DIR": data, "PATCHBAY_LOOPS": "1",
                         "PATCHBAY_API_KEYS": testAPIKey, "PATCHBAY_PUBLIC_URL": "http://127.0.0.1:\(port)", "PATCHBAY_LOG_LEVEL": "error",
                         "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000001", "TWILIO_AUTH_TOKEN": "crash-test-token",
                         "PATCHBAY_WEBHOOK_RETRY_SECONDS": "0.2,0.2,0.2"]
        p.standardOutput = Pipe()
        p.standardError = Pipe()
        try p.run()
        return p
    }

    @Test("events whose deliveries were in flight when the process was killed are delivered after the restart", .timeLimit(.minutes(1)))
    func sigkillMidDelivery() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the patchbay binary first (swift build)")
        let data = NSTemporaryDirectory() + "patchbay-crash-" + UUID().uuidString
        let out = data + ".jsonl"
        defer { try? FileManager.default.removeItem(atPath: data); try? FileManager.default.removeItem(atPath: out) }
        let port = freeLoopbackPort(), receiverPort = freeLoopbackPort()
        let secret = StandardWebhooks.secretForTests
        let receiver = try await startReceiver(port: receiverPort, secret: secret, failFirst: 0, out: out, delay: 0.5)
        defer { kill(receiver.processIdentifier, SIGKILL); receiver.waitUntilExit() }

        var server = try serve(port: port, data: data)
        let http = HTTPClient(logger: Logger(label: "t"))
        defer { http.shutdown() }
        let base = "http://127.0.0.1:\(port)"
        _ = await eventually(seconds: 10) {
            (try? String(contentsOf: URL(string: base + "/healthz")!, encoding: .utf8)) != nil
        }
        let created = try await http.execute(HTTPClientRequest(method: "POST", url: base + "/api/v1/webhooks",
            headers: [("Authorization", "Bearer \(testAPIKey)"), ("Content-Type", "application/json")],
            body: Array("{\"url\":\"http://127.0.0.1:\(receiverPort)/hooks\",\"event_types\":[\"call.status\"],\"secret\":\(JSONString.quote(secret))}".utf8)))
        try #require(created.status == 201, "\(created.bodyText)")
        // Twenty signed status callbacks: twenty `call.status` events, each into the outbox.
        for i in 0..<20 {
            let params: [(String, String)] = [("AccountSid", "AC00000000000000000000000000000001"), ("CallSid", "CA\(i)"), ("CallStatus", "completed")]
            let signature = TwilioRequestSignature.compute(authToken: "crash-test-token", url: base + "/twilio/status", parameters: params)
            let r = try await http.execute(HTTPClientRequest(method: "POST", url: base + "/twilio/status",
                headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Twilio-Signature", signature)],
                body: Array(params.map { "\($0.0)=\($0.1)" }.joined(separator: "&").utf8)))
            try #require(r.status == 204)
        }
        // Kill it while the receiver holds deliveries open (each takes 0.5 s to answer).
        let inFlight = await eventually(seconds: 10) { lines(out).contains { $0["status"] as? String == "received" } }
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        let answeredBeforeKill = Set(lines(out).filter { $0["status"] as? Int == 200 }.compactMap { $0["id"] as? String })

        server = try serve(port: port, data: data)
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() } }
        let all = await eventually(seconds: 30) { Set(lines(out).filter { $0["status"] as? Int == 200 }.compactMap { $0["id"] as? String }).count == 20 }

        #expect(inFlight)
        #expect(answeredBeforeKill.count < 20, "the kill came while deliveries were still open")
        #expect(all, "every event delivered after the restart: \(Set(lines(out).compactMap { $0["id"] as? String }).count) of 20 ids seen")
        #expect(lines(out).filter { $0["status"] as? Int == 200 }.allSatisfy { $0["valid"] as? Bool == true })
    }
}

extension StandardWebhooks {
    /// A fixed secret for tests ("patchbay-test-signing-key-32byte", the reference's example key).
    static let secretForTests = "whsec_cGF0Y2hiYXktdGVzdC1zaWduaW5nLWtleS0zMmJ5dGU="
}
