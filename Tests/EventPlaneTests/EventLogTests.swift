// The durable event log on a real SQLite file: sequence numbers, group commit, restart, retention and the gap
// answer; and replay over the Pusher socket and the REST API after a client missed events.
import EventPlane
import Events
import Foundation
import HTTPClient
import Logging
import PatchbayServer
import Store
import Testing
import TestSupport

@Suite("Event log and replay", .serialized)
struct EventLogTests {
    func temporaryPath() -> String { NSTemporaryDirectory() + "patchbay-log-\(UUID().uuidString).sqlite" }

    @Test("numbers per channel survive a restart; concurrent writes share commits; old events are purged and the gap is reported")
    func durableLog() async throws {
        let path = temporaryPath()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        var db = try Database(path: path, migrations: EventLogSchema.migrations)
        var log = try EventLog(database: db, retentionHours: 1)
        // 200 events on one channel, written concurrently: every one stored once, in fewer commits than writes.
        let writer = log
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask { try await writer.appendForTest(app: "a", channel: "c", event: "e\(i)", data: "{}", nowMillis: Int64(i)) }
            }
            try await group.waitForAll()
        }
        #expect(db.writes.load(ordering: .relaxed) == 200)
        #expect(db.commits.load(ordering: .relaxed) < 200)
        db.close()
        // Reopen: the next number continues after the last stored one; the other channel starts at 1.
        db = try Database(path: path, migrations: EventLogSchema.migrations)
        log = try EventLog(database: db, retentionHours: 1)
        #expect(try await log.appendForTest(app: "a", channel: "c", event: "after-restart", data: "{}", nowMillis: 200) == 201)
        #expect(try await log.appendForTest(app: "a", channel: "other", event: "x", data: "{}", nowMillis: 200) == 1)
        let all = try await log.events(app: "a", channel: "c", after: 0, limit: 1000)
        #expect(all.events.map(\.seq) == Array(1...201) && all.oldest == 1)
        // Retention one hour: at 3,600,100 ms everything written before 100 ms goes. (The concurrent writes took
        // their numbers in whatever order they ran, so which numbers remain comes from the stored times.)
        let purged = try await log.purge(nowMillis: 3_600_100)
        #expect(purged == 100)
        let kept = all.events.filter { $0.createdMillis >= 100 }.map(\.seq)
        let late = try await log.events(app: "a", channel: "c", after: 50, limit: 10)
        #expect(late.oldest == kept.min())
        #expect(late.events.map(\.seq) == Array(kept.filter { $0 > 50 }.prefix(10)))
        db.close()
    }

    @Test("a client that reconnects gets what it missed over the socket, then live events, and over GET /api/v1/events", .timeLimit(.minutes(1)))
    func replay() async throws {
        let apiKey = testAPIKey
        let (app, data) = try startGateway()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let logger = Logger(label: "test.replay")
        func event(_ n: Int) -> PatchbayEvent {
            PatchbayEvent(type: "call.stats", tenant: "default", occurredAtMillis: PatchbayEvent.nowMillis(), conversationID: "c1",
                          callID: "call_1", data: .object([("n", .int(Int64(n)))]))
        }
        for n in 1...5 { app.events.publish(event(n)) }
        // The client saw up to 2, reconnects asking for the rest; one more event is published during its replay.
        let script = """
        import asyncio, json, sys
        from peers import connect, subscribe
        async def main():
            ws, sid = await connect(sys.argv[1])
            async with ws:
                await subscribe(ws, sid, "private-call-call_1", patchbay_after=2)
                seen = []
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    seen.append([m["event"], m.get("patchbay_seq")])
                    if m["event"] == "call.stats" and m.get("patchbay_seq") == 6:
                        break
                print(json.dumps(seen))
        asyncio.run(main())
        """
        let publisher = Task {
            try? await Task.sleep(for: .milliseconds(600))
            app.events.publish(event(6))
        }
        let result = try await runPython(script, [String(app.port)], timeoutSeconds: 20)
        _ = await publisher.value
        let http = HTTPClient(logger: logger)
        let rest = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(app.port)/api/v1/events?channel=private-call-call_1&after=3",
                                                            headers: [("Authorization", "Bearer \(apiKey)")]))
        let refused = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(app.port)/api/v1/events?channel=private-call-call_1&after=3"))
        http.shutdown()
        await app.shutdown()

        try #require(result.status == 0, "\(result.stderr)")
        let seen = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[Any]] ?? []
        let names = seen.map { ($0[0] as? String ?? "", $0[1] as? Int) }
        #expect(names.map(\.0) == ["pusher_internal:subscription_succeeded", "call.stats", "call.stats", "call.stats", "patchbay:replay_done", "call.stats"],
                "\(names)")
        #expect(names.compactMap(\.1) == [3, 4, 5, 6])
        #expect(rest.status == 200)
        let body = try JSONSerialization.jsonObject(with: Data(rest.body)) as? [String: Any]
        #expect((body?["events"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int } == [4, 5, 6])
        #expect(body?["gap"] as? Bool == false && body?["oldest_seq"] as? Int == 1)
        #expect(refused.status == 401)
    }

    @Test("a 1,000-event replay of 4 KB events reaches a subscriber whose queue holds 64: paced, complete and in order", .timeLimit(.minutes(1)))
    func largeReplay() async throws {
        let rig = try PlaneRig(now: Date().timeIntervalSince1970, outboundQueueLimit: 64)
        let path = temporaryPath()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let db = try Database(path: path, migrations: EventLogSchema.migrations)
        let log = try EventLog(database: db, retentionHours: 1)
        rig.plane.attach(log)
        let payload = String(repeating: "y", count: 4000)
        for i in 0..<1000 {
            rig.plane.publish(PatchbayEvent(type: "tick", tenant: "acme", occurredAtMillis: Int64(i), conversationID: "c", data: .object([("p", .string(payload))])))
        }
        for _ in 0..<200 where ((try? await log.events(app: "4242", channel: "private-tenant-acme", after: 0, limit: 1000))?.events.count ?? 0) < 1000 {
            try await Task.sleep(for: .milliseconds(50))
        }
        let script = """
        import asyncio, json, sys
        from peers import connect, subscribe
        async def main():
            ws, sid = await connect(sys.argv[1], max_size=None)
            async with ws:
                await subscribe(ws, sid, "private-tenant-acme", patchbay_after=0)
                seqs = []
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if m["event"] == "tick":
                        seqs.append(m["patchbay_seq"])
                        await asyncio.sleep(0.0005 if len(seqs) % 50 == 0 else 0)  # a reader a little slower than the server
                    if m["event"] in ("patchbay:replay_done", "pusher:error"):
                        print(json.dumps({"seqs": seqs, "end": m["event"]}))
                        return
        asyncio.run(main())
        """
        let result = try await runPython(script, [String(rig.server.port)], timeoutSeconds: 30)
        await rig.shutdown()
        db.close()
        try #require(result.status == 0, "\(result.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(out["end"] as? String == "patchbay:replay_done")
        #expect((out["seqs"] as? [Int]) == Array(1...1000))
        #expect(rig.plane.slowSubscribersDropped.load(ordering: .relaxed) == 0)
    }

    @Test("a tenant without a Pusher app still has its events logged, readable with tenant=")
    func tenantWithoutApp() async throws {
        let data = NSTemporaryDirectory() + "patchbay-noapp-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: data) }
        var logger = Logger(label: "test.noapp")
        logger.logLevel = .critical
        let app = Application(config: try ConfigLoader.load(environment: ["PATCHBAY_PORT": "0", "PATCHBAY_LOOPS": "1", "PATCHBAY_DATA_DIR": data,
                                                                          "PATCHBAY_API_KEYS": testAPIKey]), logger: logger)
        try app.start()
        for n in 1...3 {
            app.events.publish(PatchbayEvent(type: "call.stats", tenant: "default", occurredAtMillis: PatchbayEvent.nowMillis(), conversationID: "c9",
                                             callID: "call_9", data: .object([("n", .int(Int64(n)))])))
        }
        let http = HTTPClient(logger: logger)
        func get(_ query: String) async throws -> (Int, [String: Any]) {
            let r = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(app.port)/api/v1/events?\(query)",
                                                             headers: [("Authorization", "Bearer \(testAPIKey)")]))
            return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]) ?? [:])
        }
        var found: [Int] = []
        for _ in 0..<100 {
            let (_, body) = try await get("tenant=default&channel=private-call-call_9&after=0")
            found = (body["events"] as? [[String: Any]])?.compactMap { $0["seq"] as? Int } ?? []
            if found.count == 3 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let unknown = try await get("tenant=nobody&channel=private-call-call_9&after=0")
        http.shutdown()
        await app.shutdown()
        #expect(found == [1, 2, 3])
        #expect(unknown.0 == 404)
    }
}
