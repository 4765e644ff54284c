// The Pusher server against independent clients from PyPI (pysher, pusher), over real sockets.
import Events
import EventPlane
import Foundation
import Logging
import PatchbayServer
import Signing
import Testing
import TestSupport

@Suite("Pusher protocol and HTTP API with pysher and pusher", .serialized)
struct PusherConformanceTests {
    @Test("subscriptions, presence, client events, HTTP API, Patchbay's own events and refusals", .timeLimit(.minutes(1)))
    func conformance() async throws {
        let apiKey = testAPIKey
        let (app, data) = try startGateway(loops: 2)
        defer { try? FileManager.default.removeItem(atPath: data) }
        // Patchbay's own events, published while the peers run (a dashboard sees calls as they happen).
        let publisher = Task {
            while !Task.isCancelled {
                app.events.publish(PatchbayEvent(type: "call.started", tenant: "default", occurredAtMillis: PatchbayEvent.nowMillis(),
                                                 conversationID: "acme", callID: "call_1",
                                                 data: .object([("from", .string("+14155550100"))])))
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        let result = try await runProgram(testPython, [repositoryRoot.appendingPathComponent("Tests/python/pusher_peers.py").path,
                                                 "127.0.0.1", String(app.port), "4242", "pbkey123", "pbsecret456", apiKey], timeoutSeconds: 45)
        publisher.cancel()
        await app.shutdown()
        try #require(result.status == 0, "\(result.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]

        #expect(out["a_subscribed"] as? [String] == ["presence-room", "private-call-call_1", "private-tenant-acme", "public-feed"])
        let added = out["a_member_added"] as? [[String: Any]] ?? []
        #expect(added.count == 1 && added.first?["user_id"] as? String == "agent-9" && (added.first?["user_info"] as? [String: String]) == ["name": "Leo"])
        let presence = out["b_presence"] as? [String: Any]
        #expect(presence?["count"] as? Int == 2 && (presence?["ids"] as? [String])?.sorted() == ["agent-7", "agent-9"])
        let events = out["a_events"] as? [[Any]] ?? []
        #expect(events.count == 4, "\(events)")
        #expect((out["channels_info"] as? [String: Any]).flatMap { ($0["channels"] as? [String: [String: Int]])?["presence-room"]?["user_count"] } == 2)
        let info = out["channel_info"] as? [String: Any]
        #expect(info?["occupied"] as? Bool == true && info?["user_count"] as? Int == 2 && info?["subscription_count"] as? Int == 2)
        #expect(((out["channels_info"] as? [String: Any])?["channels"] as? [String: Any])?.keys.sorted() == ["presence-room"])
        #expect(((out["users_info"] as? [String: Any])?["users"] as? [[String: String]])?.compactMap { $0["id"] }.sorted() == ["agent-7", "agent-9"])
        #expect((out["a_client_events"] as? [[String: String]]) == [["who": "agent-9"]])
        #expect((out["b_client_events"] as? [Any])?.isEmpty == true, "client events are never echoed to the sender")
        let own = out["own_event"] as? [String: Any]
        #expect(own?["type"] as? String == "call.started" && own?["tenant"] as? String == "default" && own?["call_id"] as? String == "call_1")
        #expect(out["bad_secret"] as? String == "PusherBadAuth")
        #expect(out["stale_timestamp"] as? String == "PusherBadAuth")
        let wrong = out["wrong_key"] as? [String: Any]
        #expect(wrong?["event"] as? String == "pusher:error" && wrong?["code"] as? Int == 4001 && wrong?["close"] as? Int == 4001)
        #expect((out["auth"] as? [String: Any])?["matches"] as? Bool == true)
        #expect(out["auth_refused"] as? Int == 401)
        #expect(((out["a_member_removed"] as? [[String: String]]) ?? []) == [["user_id": "agent-9"]])
    }
}
