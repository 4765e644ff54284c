// Pusher features beyond subscribe and publish, over real sockets with the `pusher` library as the reference signer
// (Tests/python/pusher_extras.py), and dashboard tokens on a clock the test sets.
import EventPlane
import Foundation
import HTTPClient
import Signing
import Testing
import TestSupport
import Transport

@Suite("Pusher sign-in, cache and encrypted channels, quotas, protocol versions and dashboard tokens", .serialized)
struct PusherExtrasTests {
    static let masterKey = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=" // 32 bytes

    @Test("against the pusher library and raw sockets", .timeLimit(.minutes(1)))
    func extras() async throws {
        let (app, data) = try startGateway(extra: ["PATCHBAY_PUSHER_ENCRYPTION_MASTER_KEY": Self.masterKey, "PATCHBAY_PUSHER_MAX_CONNECTIONS": "4"])
        defer { try? FileManager.default.removeItem(atPath: data) }
        let result = try await runProgram(testPython, [repositoryRoot.appendingPathComponent("Tests/python/pusher_extras.py").path,
                                                 "127.0.0.1", String(app.port), "4242", "pbkey123", "pbsecret456", testAPIKey,
                                                 Self.masterKey, "4"], timeoutSeconds: 45)
        await app.shutdown()
        try #require(result.status == 0, "\(result.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        func triple(_ k: String) -> [String] { (out[k] as? [Any] ?? []).map { "\($0)" } }

        // Protocol versions (§1): missing 4008, not a number 4006, out of range 4007; error event then the same close.
        #expect(triple("no_protocol") == ["pusher:error", "4008", "4008"])
        #expect(triple("bad_version") == ["pusher:error", "4006", "4006"])
        #expect(triple("unsupported") == ["pusher:error", "4007", "4007"])
        #expect(out["protocol_5"] as? String == "established" && out["protocol_6"] as? String == "established")
        #expect((out["too_large"] as? [Int]) == [4300, 1009])
        // Sign-in, #server-to-user- events, terminate_connections of both of the user's sockets, a bad signature.
        #expect(out["signin"] as? Bool == true)
        #expect((out["to_user"] as? [Any])?.first as? String == "#server-to-user-agent-7")
        #expect(((out["to_user"] as? [Any])?.last as? [String: String]) == ["text": "hola"])
        #expect((out["terminated"] as? [[Int]]) == [[4009, 4009], [4009, 4009]])
        #expect((out["terminated_apps_path"] as? [Int]) == [4009, 4009])
        #expect((out["bad_signin"] as? [Int]) == [4009, 4009])
        // Cache channels: the last of two events, then cache_miss for an empty one.
        #expect((out["cache_hit"] as? [Any])?.first as? String == "price")
        #expect(((out["cache_hit"] as? [Any])?.last as? [String: Int]) == ["eur": 2])
        #expect(triple("cache_miss") == ["pusher:cache_miss", "cache-empty"])
        // Encrypted channels and user authentication agree with the pusher library byte for byte.
        #expect(triple("encrypted_auth") == ["200", "1"])
        #expect(triple("user_auth") == ["200", "1"])
        #expect(out["encrypted_multi"] as? Int == 400)
        // Dashboard tokens: the token's user wins over what the page asks for.
        #expect(triple("token_issued") == ["201", "1"])
        let presence = out["token_presence"] as? [Any] ?? []
        #expect(presence.first as? Int == 200)
        #expect((presence.dropFirst().first as? [String: Any])?["user_id"] as? String == "agent-3")
        #expect(((presence.dropFirst().first as? [String: Any])?["user_info"] as? [String: String]) == ["name": "Eva"])
        #expect((presence.last as? [String]) == ["agent-3"])
        #expect(((out["token_signin"] as? [Any])?.last as? [String: Any])?["id"] as? String == "agent-3")
        #expect(out["token_other_app"] as? Int == 403)
        #expect(out["token_tampered"] as? Int == 401)
        // The connection quota: 4004 past it; a freed slot is usable again.
        #expect(triple("over_quota") == ["pusher:error", "4004", "4004"])
        #expect(out["after_release"] as? String == "established")
    }

    @Test("dashboard tokens expire, and only the API keys that signed them verify them")
    func tokenLifetime() async throws {
        let rig = try PlaneRig(now: 1_700_000_000, apiKeys: ["key-one"])
        func post(_ path: String, bearer: String, _ body: String, json: Bool = false) async throws -> (Int, String) {
            let r = try await rig.http.execute(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(rig.server.port)\(path)",
                                                                 headers: [("Content-Type", json ? "application/json" : "application/x-www-form-urlencoded"),
                                                                           ("Authorization", "Bearer " + bearer)], body: Array(body.utf8)))
            return (r.status, String(decoding: r.body, as: UTF8.self))
        }
        let (status, body) = try await post("/api/v1/auth-tokens", bearer: "key-one", "{\"tenant\":\"acme\",\"user_id\":\"agent-1\",\"ttl_seconds\":60}", json: true)
        #expect(status == 201)
        let token = (try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["token"] as? String ?? ""
        let ok = try await post("/pusher/auth", bearer: token, "socket_id=1.2&channel_name=private-tenant-acme")
        #expect(ok.0 == 200)
        #expect(ok.1 == "{\"auth\":\"pbkey123:\(Signing.hex(Signing.hmac(.sha256, key: "pbsecret456", message: "1.2:private-tenant-acme")))\"}")
        rig.clock.seconds += 61
        let expired = try await post("/pusher/auth", bearer: token, "socket_id=1.2&channel_name=private-tenant-acme")
        #expect(expired.0 == 401 && expired.1.contains("token_expired"))
        // Bad requests: a tenant without an app, no user, a ttl out of range, a token asking for a token.
        #expect(try await post("/api/v1/auth-tokens", bearer: "key-one", "{\"tenant\":\"nobody\",\"user_id\":\"a\"}", json: true).0 == 404)
        #expect(try await post("/api/v1/auth-tokens", bearer: "key-one", "{\"tenant\":\"acme\"}", json: true).0 == 422)
        #expect(try await post("/api/v1/auth-tokens", bearer: "key-one", "{\"tenant\":\"acme\",\"user_id\":\"a\",\"ttl_seconds\":5}", json: true).0 == 422)
        #expect(try await post("/api/v1/auth-tokens", bearer: token, "{\"tenant\":\"acme\",\"user_id\":\"a\"}", json: true).0 == 401)
        await rig.shutdown()
        // Another deployment's keys do not verify it.
        let other = try PlaneRig(now: 1_700_000_000, apiKeys: ["key-two"])
        let foreign = try await other.http.execute(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(other.server.port)/pusher/auth",
                                                                      headers: [("Authorization", "Bearer " + token)],
                                                                      body: Array("socket_id=1.2&channel_name=private-tenant-acme".utf8)))
        #expect(foreign.status == 401)
        await other.shutdown()
    }

    @Test("a presence channel takes 100 members; the 101st user is refused with LimitReached 4100, a member's second socket is not", .timeLimit(.minutes(1)))
    func presenceLimit() async throws {
        let rig = try PlaneRig(now: Date().timeIntervalSince1970)
        let script = """
        import asyncio, json, sys
        from peers import connect, subscribe, until
        async def join(user):
            ws, sid = await connect(sys.argv[1])
            await subscribe(ws, sid, "presence-full", user=user)
            return ws, await until(ws, "pusher_internal:subscription_succeeded", "pusher:subscription_error")
        async def main():
            held = []
            for i in range(100):
                ws, m = await join(f"u{i}")
                assert m["event"] == "pusher_internal:subscription_succeeded", m
                held.append(ws)
            _, extra = await join("u100")
            _, again = await join("u7")
            print(json.dumps({"extra": extra, "again": again["event"]}))
        asyncio.run(main())
        """
        let result = try await runPython(script, [String(rig.server.port)], timeoutSeconds: 40)
        await rig.shutdown()
        try #require(result.status == 0, "\(result.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        let extra = out["extra"] as? [String: Any]
        #expect(extra?["event"] as? String == "pusher:subscription_error")
        #expect((extra?["data"] as? [String: Any])?["type"] as? String == "LimitReached")
        #expect((extra?["data"] as? [String: Any])?["status"] as? Int == 4100)
        #expect(out["again"] as? String == "pusher_internal:subscription_succeeded")
    }
}

@Suite("Pusher-format server webhooks")
struct PusherServerWebhookTests {
    @Test("occupied, member added and removed, client events, cache misses and vacated reach a receiver that validates them with the pusher library; a brief leave is not reported; a failing receiver gets them on retry",
          .timeLimit(.minutes(1)))
    func serverWebhooks() async throws {
        let port = freeLoopbackPort()
        let out = NSTemporaryDirectory() + "pusher-webhooks-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let receiver = try await startPythonServer("pusher_webhook_receiver.py", port: port, ["4242", "pbkey123", "pbsecret456", "1", out])
        defer { kill(receiver.processIdentifier, SIGKILL) }
        let (app, data) = try startGateway(extra: ["PATCHBAY_PUSHER_WEBHOOK_URL": "http://127.0.0.1:\(port)/pusher"])
        defer { try? FileManager.default.removeItem(atPath: data) }
        let script = """
        import asyncio, json, sys
        import peers
        async def connect():
            return await peers.connect(sys.argv[1])
        async def subscribe(ws, sid, ch, user=None):
            await peers.subscribe(ws, sid, ch, user=user)
            await peers.until(ws, "pusher_internal:subscription_succeeded")
        async def main():
            a, sa = await connect()
            await subscribe(a, sa, "presence-room", "ana")
            b, sb = await connect()
            await subscribe(b, sb, "presence-room", "leo")
            await b.send(json.dumps({"event": "client-typing", "channel": "presence-room", "data": {"who": "leo"}}))
            while json.loads(await a.recv())["event"] != "client-typing": pass  # handled before a's next request
            await subscribe(a, sa, "cache-rates")
            # Leo reloads the page: leaves and is back within 3 s, so no member_removed / member_added pair.
            await b.close()
            b, sb = await connect()
            await subscribe(b, sb, "presence-room", "leo")
            await asyncio.sleep(0.5)
            await a.close(); await b.close()
            print("done", flush=True)
        asyncio.run(main())
        """
        let result = try await runPython(script, [String(app.port)], timeoutSeconds: 20)
        try #require(result.status == 0, "\(result.stderr)")
        // The removals wait 3 s, the first POST failed and is retried after 1 s.
        _ = await eventually(seconds: 15) { lines(out).contains { ($0["events"] as? [[String: Any]])?.contains { $0["name"] as? String == "channel_vacated" && $0["channel"] as? String == "presence-room" } ?? false } }
        await app.shutdown()
        let posts = lines(out)
        #expect(posts.first?["status"] as? Int == 500)
        #expect(posts.allSatisfy { $0["valid"] as? Bool == true }, "\(posts)")
        let delivered = posts.filter { $0["status"] as? Int == 200 }.flatMap { $0["events"] as? [[String: Any]] ?? [] }
        func describe(_ e: [String: Any]) -> String {
            [e["name"], e["channel"], e["user_id"], e["event"]].compactMap { $0 as? String }.joined(separator: " ")
        }
        let names = delivered.map(describe)
        // In order up to the leaving; a's two channels then go in either order, leo's removal before the vacated room.
        #expect(Array(names.prefix(6)) == ["channel_occupied presence-room", "member_added presence-room ana", "member_added presence-room leo",
                                           "client_event presence-room leo client-typing", "channel_occupied cache-rates", "cache_miss cache-rates"],
                "\(names)")
        #expect(Set(names.dropFirst(6)) == ["member_removed presence-room ana", "channel_vacated cache-rates", "member_removed presence-room leo",
                                            "channel_vacated presence-room"] && names.count == 10, "\(names)")
        let client = delivered.first { $0["name"] as? String == "client_event" }
        #expect(client?["data"] as? String == "{\"who\":\"leo\"}" && (client?["socket_id"] as? String)?.contains(".") == true)
        #expect(names.firstIndex(of: "member_removed presence-room leo")! < names.firstIndex(of: "channel_vacated presence-room")!)
    }
}

@Suite("Pusher protocol: malformed client messages")
struct PusherMalformedTests {
    @Test("every malformed message gets a pusher:error or is ignored; the connection stays open and answers pings", .timeLimit(.minutes(1)))
    func malformed() async throws {
        let rig = try PlaneRig(now: Date().timeIntervalSince1970)
        let script = #"""
        import asyncio, json, sys
        from peers import connect
        cases = [
            b"\xff\xfe not utf-8".decode("latin-1"), "not json", "[]", "42", "null", '{"data": {}}', '{"event": 7}',
            '{"event": "pusher:subscribe"}', '{"event": "pusher:subscribe", "data": 5}', '{"event": "pusher:subscribe", "data": {"channel": 5}}',
            '{"event": "pusher:subscribe", "data": {"channel": "bad name!"}}', '{"event": "pusher:subscribe", "data": {"channel": "#server-to-user-x"}}',
            '{"event": "pusher:subscribe", "data": {"channel": "' + "a" * 200 + '"}}',
            '{"event": "pusher:subscribe", "data": {"channel": "private-x", "auth": 12}}',
            '{"event": "pusher:subscribe", "data": {"channel": "presence-x", "auth": "k:0", "channel_data": "{"}}',
            '{"event": "pusher:subscribe", "data": {"channel": "public-x", "patchbay_after": "soon"}}',
            '{"event": "pusher:unsubscribe", "data": {"channel": "never-joined"}}', '{"event": "pusher:unsubscribe"}',
            '{"event": "client-x"}', '{"event": "client-x", "channel": "public-x", "data": {}}', '{"event": "client-x", "channel": 3}',
            '{"event": "pusher:unknown", "data": {}}', '{"event": "pusher:ping", "data": "not an object"}',
            '{"event": "pusher:subscribe", "data": "{\\"channel\\": \\"public-y\\"}"}',
        ]
        async def main():
            ws, _ = await connect(sys.argv[1])
            async with ws:
                results = []
                for c in cases:
                    await ws.send(c)
                    await ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
                    seen, pongs = [], 2 if "pusher:ping" in c else 1  # a ping with string data (pysher's) is a ping
                    while pongs:
                        m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                        if m["event"] == "pusher:pong":
                            pongs -= 1
                        else:
                            seen.append(m["event"])
                    results.append(seen)
                await ws.send(b"\x00\x01binary")
                await ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
                binary = [json.loads(await asyncio.wait_for(ws.recv(), 5))["event"] for _ in range(2)]
                print(json.dumps({"results": results, "binary": binary}))
        asyncio.run(main())
        """#
        let result = try await runPython(script, [String(rig.server.port)], timeoutSeconds: 30)
        await rig.shutdown()
        try #require(result.status == 0, "\(result.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        let results = out["results"] as? [[String]] ?? []
        #expect(results.count == 24)
        let allowed: Set<String> = ["pusher:error", "pusher:subscription_error", "pusher_internal:subscription_succeeded"]
        #expect(results.allSatisfy { $0.allSatisfy(allowed.contains) }, "\(results)")
        // Refused outright: not JSON, not an object, no event, a bad or reserved channel name.
        for i in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] { #expect(results[i].first == "pusher:error", "case \(i): \(results[i])") }
        #expect(results[13] == ["pusher:subscription_error"] && results[14] == ["pusher:subscription_error"])
        // A public subscribe with a nonsense patchbay_after still subscribes (the extension is ignored).
        #expect(results[15] == ["pusher_internal:subscription_succeeded"])
        #expect(results[19] == ["pusher:error"], "client events on a public channel are refused")
        #expect(results[23] == ["pusher_internal:subscription_succeeded"], "data as a JSON string is accepted")
        #expect((out["binary"] as? [String]) == ["pusher:error", "pusher:pong"])
    }
}
