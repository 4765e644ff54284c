// Outgoing webhooks end to end: a receiver that fails then recovers (signatures checked by the standardwebhooks
// reference library), delivery after a restart, dead-lettering.
import EventPlane
import Events
import Foundation
import HTTPClient
import Logging
import PatchbayServer
import Testing
import TestSupport

@Suite("Outgoing webhooks", .serialized)
struct WebhookTests {
    let apiKey = testAPIKey

    func makeApp(_ data: String, retries: String) throws -> Application {
        try startGateway(data: data, extra: ["PATCHBAY_WEBHOOK_RETRY_SECONDS": retries]).app
    }

    func event(_ type: String) -> PatchbayEvent {
        PatchbayEvent(type: type, tenant: "default", occurredAtMillis: PatchbayEvent.nowMillis(), conversationID: "c1", callID: "call_1",
                      data: .object([("k", .string("v"))]))
    }

    func createWebhook(_ app: Application, url: String, types: [String], secret: String) async throws -> (status: Int, id: String) {
        let http = HTTPClient(logger: Logger(label: "t"))
        defer { http.shutdown() }
        let body = try JSONSerialization.data(withJSONObject: ["url": url, "event_types": types, "secret": secret])
        let r = try await http.execute(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(app.port)/api/v1/webhooks",
                                                         headers: [("Authorization", "Bearer \(apiKey)"), ("Content-Type", "application/json")], body: [UInt8](body)))
        let id = (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])?["id"] as? String ?? ""
        return (r.status, id)
    }

    @Test("a receiver that fails twice then recovers gets each event once per webhook-id, signed; other types are not sent", .timeLimit(.minutes(1)))
    func retriesThenDelivers() async throws {
        let data = NSTemporaryDirectory() + "patchbay-wh-" + UUID().uuidString
        let out = data + ".jsonl"
        defer { try? FileManager.default.removeItem(atPath: data); try? FileManager.default.removeItem(atPath: out) }
        let app = try makeApp(data, retries: "0.2,0.3,0.4")
        let secret = StandardWebhooks.newSecret()
        let port = freeLoopbackPort()
        let receiver = try await startReceiver(port: port, secret: secret, failFirst: 2, out: out)
        defer { kill(receiver.processIdentifier, SIGKILL); receiver.waitUntilExit() }
        let created = try await createWebhook(app, url: "http://127.0.0.1:\(port)/hooks", types: ["call.completed", "call.dtmf"], secret: secret)
        #expect(created.status == 201)
        let sent = [event("call.completed"), event("call.dtmf"), event("call.stats")]
        for e in sent { app.events.publish(e) }
        let done = await eventually(seconds: 15) { lines(out).filter { $0["status"] as? Int == 200 }.count == 2 }
        try? await Task.sleep(for: .milliseconds(500)) // nothing more may arrive
        let http = HTTPClient(logger: Logger(label: "t"))
        let deliveries = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(app.port)/api/v1/webhooks/\(created.id)/deliveries",
                                                                  headers: [("Authorization", "Bearer \(apiKey)")]))
        http.shutdown()
        await app.shutdown()

        #expect(done)
        let got = lines(out)
        #expect(got.allSatisfy { $0["valid"] as? Bool == true }, "every request's signature verifies with standardwebhooks")
        #expect(Set(got.compactMap { $0["id"] as? String }) == [sent[0].id, sent[1].id], "the stats event was not subscribed")
        for e in sent.prefix(2) {
            let attempts = got.filter { $0["id"] as? String == e.id }
            #expect(attempts.map { $0["status"] as? Int ?? 0 } == [500, 500, 200], "\(e.type): \(attempts)")
        }
        let body = try JSONSerialization.jsonObject(with: Data(deliveries.body)) as? [String: Any]
        let rows = body?["deliveries"] as? [[String: Any]] ?? []
        #expect(rows.count == 2 && rows.allSatisfy { $0["state"] as? String == "delivered" && $0["attempts"] as? Int == 3 && ($0["history"] as? [Any])?.count == 3 })
    }

    @Test("events queued while the receiver is down are delivered after a restart; a receiver that never recovers is dead-lettered", .timeLimit(.minutes(1)))
    func restartAndDeadLetter() async throws {
        let data = NSTemporaryDirectory() + "patchbay-wh-" + UUID().uuidString
        let out = data + ".jsonl"
        defer { try? FileManager.default.removeItem(atPath: data); try? FileManager.default.removeItem(atPath: out) }
        let secret = StandardWebhooks.newSecret()
        // Held, not listening, while the first life runs: refused at once, and no parallel test's server can take it.
        let (port, reserved) = reserveLoopbackPort()
        // First life: nobody listens; each first attempt fails (connection refused) and is rescheduled 0.5 s out.
        var app = try makeApp(data, retries: "0.5")
        let created = try await createWebhook(app, url: "http://127.0.0.1:\(port)/hooks", types: ["*"], secret: secret)
        let e1 = event("call.started"), e2 = event("call.completed")
        app.events.publish(e1)
        app.events.publish(e2)
        let failedOnce = await eventually(seconds: 5) { (app.eventPlane.outbox?.failedAttempts.load(ordering: .relaxed) ?? 0) >= 2 }
        await app.shutdown()
        #expect(failedOnce)
        // Second life on the same data directory, the receiver up: the outbox and the endpoint were kept, and both
        // events arrive, once each.
        close(reserved)
        let receiver = try await startReceiver(port: port, secret: secret, failFirst: 0, out: out)
        defer { kill(receiver.processIdentifier, SIGKILL); receiver.waitUntilExit() }
        app = try makeApp(data, retries: "0.1")
        #expect(app.eventPlane.outbox?.list().map(\.id) == [created.id])
        let delivered = await eventually(seconds: 10) { Set(lines(out).filter { $0["status"] as? Int == 200 }.compactMap { $0["id"] as? String }) == [e1.id, e2.id] }
        try? await Task.sleep(for: .milliseconds(300))
        await app.shutdown()
        #expect(delivered)
        #expect(lines(out).count == 2, "each once: \(lines(out))")

        // Dead letter: a receiver that always fails, two retries.
        try? FileManager.default.removeItem(atPath: out)
        kill(receiver.processIdentifier, SIGKILL)
        receiver.waitUntilExit()
        let failing = try await startReceiver(port: port, secret: secret, failFirst: 1000, out: out)
        defer { kill(failing.processIdentifier, SIGKILL); failing.waitUntilExit() }
        app = try makeApp(data, retries: "0.1,0.1")
        let e4 = event("call.failed")
        app.events.publish(e4)
        let dead = await eventually(seconds: 10) { (app.eventPlane.outbox?.deadLettered.load(ordering: .relaxed) ?? 0) >= 1 }
        await app.shutdown()
        #expect(dead)
        #expect(lines(out).filter { $0["id"] as? String == e4.id }.count == 3, "three attempts, then the dead letter")
    }

    @Test("a graceful shutdown lets a delivery in flight finish and records it: the next life does not send it again", .timeLimit(.minutes(1)))
    func shutdownDrains() async throws {
        let data = NSTemporaryDirectory() + "patchbay-wh-" + UUID().uuidString
        let out = data + ".jsonl"
        defer { try? FileManager.default.removeItem(atPath: data); try? FileManager.default.removeItem(atPath: out) }
        let secret = StandardWebhooks.newSecret()
        let port = freeLoopbackPort()
        let receiver = try await startReceiver(port: port, secret: secret, failFirst: 0, out: out, delay: 0.7)
        defer { kill(receiver.processIdentifier, SIGKILL); receiver.waitUntilExit() }
        var app = try makeApp(data, retries: "0.1")
        _ = try await createWebhook(app, url: "http://127.0.0.1:\(port)/hooks", types: ["*"], secret: secret)
        let e = event("call.completed")
        app.events.publish(e)
        let inFlight = await eventually(seconds: 10) { lines(out).contains { $0["status"] as? String == "received" } }
        await app.shutdown() // the receiver answers 0.7 s after it received the request
        let answered = lines(out).filter { $0["status"] as? Int == 200 }.count
        app = try makeApp(data, retries: "0.1")
        try? await Task.sleep(for: .milliseconds(800))
        await app.shutdown()
        #expect(inFlight)
        #expect(answered == 1, "the delivery in flight finished during the shutdown")
        #expect(lines(out).filter { $0["id"] as? String == e.id && $0["status"] as? String == "received" }.count == 1, "and was not sent again")
    }
}
