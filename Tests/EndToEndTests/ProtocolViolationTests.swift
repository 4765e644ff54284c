// What Patchbay refuses on the media stream, and how: signatures over HTTP, then each malformed or out-of-order
// message sequence closed with a clear code, the gateway serving on afterwards.
import Foundation
import Harness
import HTTPClient
import Signing
import Synchronization
import Testing
import TestSupport
import Transport
import WireFormats

/// A scripted raw Twilio-side client: sends its messages once open, records how the connection ended.
final class RawStreamClient: WebSocketHandler, @unchecked Sendable {
    let messages: [Either]
    let result = Mutex<(opened: Bool, code: UInt16?, reason: String)>((false, nil, ""))
    enum Either { case text(String), binary([UInt8]) }

    init(_ messages: [Either]) { self.messages = messages }

    func webSocketDidOpen(_ connection: WebSocketConnection) {
        result.withLock { $0.opened = true }
        for m in messages {
            switch m {
            case .text(let t): connection.send(text: t)
            case .binary(let b): b.withUnsafeBytes { _ = connection.send(binary: $0) }
            }
        }
    }
    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {}
    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {
        result.withLock { $0.code = code.rawValue; $0.reason = reason }
    }
}

@Suite("Media stream refusals", .serialized)
struct ProtocolViolationTests {
    static let connected = "{\"event\":\"connected\",\"protocol\":\"Call\",\"version\":\"1.0.0\"}"

    /// Opens a raw stream (signed unless told otherwise), sends `messages`, returns the close code.
    func run(_ rig: Rig, signature: String? = nil, _ messages: [RawStreamClient.Either]) async -> (opened: Bool, code: UInt16?, reason: String) {
        let client = RawStreamClient(messages)
        _ = rig.openRawStream(client, signature: signature)
        _ = await eventually(seconds: 8) { client.result.withLock { $0.code != nil } }
        return client.result.withLock { $0 }
    }

    func start(_ c: CallerSimulatorConfiguration, format: String = "audio/x-mulaw", token: String? = nil) -> String {
        var params = c.customParameters
        if let token { params["token"] = token }
        return TwilioStart(streamSID: c.streamSID, accountSID: twilioAccount, callSID: c.callSID, customParameters: params, encoding: format).json()
    }

    @Test("webhooks and the upgrade without a valid X-Twilio-Signature are refused with 403 and a JSON error")
    func signatures() async throws {
        let rig = try Rig(agent: AgentSimulatorConfiguration())
        let bad = try await rig.voiceWebhook(callSID: "CA0000000000000000000000000000000a", token: "wrong-token")
        let good = try await rig.voiceWebhook(callSID: "CA0000000000000000000000000000000b")
        let upgrade = await run(rig, signature: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", [.text(Self.connected)])
        let status = try await rig.http.execute(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(rig.app.port)/twilio/status",
                                                                  headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                                  body: Array("AccountSid=\(twilioAccount)&CallSid=CA1&CallStatus=completed".utf8)))
        await rig.shutdown()

        #expect(bad.status == 403 && bad.body.contains("\"invalid_signature\""))
        #expect(good.status == 200 && good.body.contains("<Connect><Stream url=\"wss://gw.example.com/twilio/media\""))
        #expect(good.body.contains("<Parameter name=\"token\""))
        #expect(!upgrade.opened)
        #expect(status.status == 403 && status.bodyText.contains("\"missing_signature\""))
    }

    @Test("malformed and out-of-order messages are closed with a clear code, and the gateway keeps serving")
    func violations() async throws {
        let rig = try Rig(agent: AgentSimulatorConfiguration())
        let c = try await rig.caller(audio: [])
        let media = "{\"event\":\"media\",\"sequenceNumber\":\"2\",\"media\":{\"track\":\"inbound\",\"chunk\":\"1\",\"timestamp\":\"0\",\"payload\":\"//////////8=\"},\"streamSid\":\"\(c.streamSID)\"}"
        let cases: [(String, [RawStreamClient.Either], UInt16)] = [
            ("start before connected", [.text(start(c))], 1008),
            ("not JSON first", [.text("hello")], 1008),
            ("binary frame", [.binary([1, 2, 3])], 1003),
            ("media before start", [.text(Self.connected), .text(media)], 1008),
            ("a forged call token", [.text(Self.connected), .text(start(c, token: "00112233445566778899aabbccddeeff"))], 1008),
            ("A-law instead of mu-law", [.text(Self.connected), .text(start(c, format: "audio/x-alaw"))], 1008),
            ("start twice", [.text(Self.connected), .text(start(c)), .text(start(c))], 1008),
            ("another stream's media", [.text(Self.connected), .text(start(c)), .text(media.replacingOccurrences(of: c.streamSID, with: "MZffffffffffffffffffffffffffffffff"))], 1008),
            ("invalid JSON while streaming", [.text(Self.connected), .text(start(c)), .text("{\"event\":\"media\",")], 1007),
        ]
        var outcomes: [(String, UInt16?, String)] = []
        for (name, messages, _) in cases { let r = await run(rig, messages); outcomes.append((name, r.code, r.reason)) }
        let health = try await rig.http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(rig.app.port)/healthz"))
        let failed = rig.events.events.filter { $0.type == "call.failed" }
        await rig.shutdown()

        for ((name, _, expected), (_, code, reason)) in zip(cases, outcomes) {
            #expect(code == expected, "\(name): closed \(code.map(String.init) ?? "never") (\(reason)), expected \(expected)")
            #expect(!reason.isEmpty, "\(name): the close carries a reason")
        }
        #expect(health.status == 200)
        // The three that reached `start` are calls that failed on a protocol error; the others never became calls.
        #expect(failed.count == 3 && failed.allSatisfy { string($0, "reason") == "twilio_protocol_error" })
    }
}
