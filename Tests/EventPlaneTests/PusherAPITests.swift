// The HTTP API's signature on the reference's worked examples (fixed clock), and back-pressure on a subscriber that
// stops reading, over real sockets.
import Events
import EventPlane
import Foundation
import HTTPClient
import Logging
import Signing
import Testing
import TestSupport
import Transport
import WireFormats

/// An event plane on its own server, with a clock the test sets.
final class PlaneRig: @unchecked Sendable {
    let plane: EventPlane
    let server: Server
    let http: HTTPClient
    let clock: Clock
    final class Clock: @unchecked Sendable {
        var seconds: Double
        init(_ s: Double) { seconds = s }
    }

    init(now: Double, outboundQueueLimit: Int = 512, apiKeys: [String] = []) throws {
        var logger = Logger(label: "test.plane")
        logger.logLevel = .critical
        let clock = Clock(now)
        self.clock = clock
        plane = EventPlane(apps: [PusherAppConfig(tenant: "acme", appID: "4242", key: "pbkey123", secret: "pbsecret456"),
                                  PusherAppConfig(tenant: "pusherdocs", appID: "3", key: "278d425bdf160c739803", secret: "7ad3773142a6692b25b8")],
                           apiKeys: apiKeys, logger: logger, now: { clock.seconds })
        var settings = ServerConfiguration()
        settings.host = "127.0.0.1"
        settings.port = 0
        settings.loops = 1
        settings.outboundQueueLimit = outboundQueueLimit
        let router = Router()
        plane.install(on: router)
        server = Server(configuration: settings, router: router, logger: logger)
        try server.start()
        http = HTTPClient(logger: logger)
    }

    func shutdown() async {
        await server.shutdown(timeout: .seconds(2))
        http.shutdown()
    }

    func post(_ pathAndQuery: String, _ body: String) async throws -> Int {
        try await http.execute(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(server.port)\(pathAndQuery)",
                                                 headers: [("Content-Type", "application/json")], body: Array(body.utf8))).status
    }
}

@Suite("Pusher HTTP API signatures and back-pressure", .serialized)
struct PusherAPITests {
    @Test("the reference's worked examples are accepted at their timestamp and refused 601 s later or altered")
    func workedExamples() async throws {
        let rig = try PlaneRig(now: 1_700_000_000)
        let body = "{\"name\":\"message.received\",\"channel\":\"private-tenant-acme\",\"data\":\"{\\\"id\\\":\\\"evt_1\\\"}\"}"
        let q = "auth_key=pbkey123&auth_timestamp=1700000000&auth_version=1.0&body_md5=e0e3a4f9be5292928cad5f1b4bbad35c"
        let ok = try await rig.post("/apps/4242/events?\(q)&auth_signature=c44d58ab1665d8f083d34de7bc91245ebc0db6df484eaa891a5f9b2196115b66", body)
        let tampered = try await rig.post("/apps/4242/events?\(q)&auth_signature=c44d58ab1665d8f083d34de7bc91245ebc0db6df484eaa891a5f9b2196115b66", body + " ")
        rig.clock.seconds = 1_700_000_601
        let stale = try await rig.post("/apps/4242/events?\(q)&auth_signature=c44d58ab1665d8f083d34de7bc91245ebc0db6df484eaa891a5f9b2196115b66", body)
        // Pusher's own published example (app 3).
        rig.clock.seconds = 1_353_088_179
        let docs = try await rig.post("/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
                                      "{\"name\":\"foo\",\"channels\":[\"project-3\"],\"data\":\"{\\\"some\\\":\\\"data\\\"}\"}")
        let unknownApp = try await rig.post("/apps/999/events?\(q)", body)
        await rig.shutdown()
        #expect(ok == 200)
        #expect(tampered == 401)
        #expect(stale == 401)
        #expect(docs == 200)
        #expect(unknownApp == 404)
    }

    @Test("a subscriber that stops reading is cut off with 4100 while another keeps receiving everything")
    func slowSubscriber() async throws {
        let rig = try PlaneRig(now: Date().timeIntervalSince1970, outboundQueueLimit: 64)
        let port = rig.server.port
        // Two raw Python clients: one reads, one never reads after subscribing.
        let script = """
        import asyncio, json, sys, websockets
        from peers import connect, subscribe
        async def client(read):
            # The slow one really stops reading: a one-message queue pauses reading from the socket.
            ws, sid = await connect(sys.argv[1], max_queue=None if read else 1, ping_interval=None, max_size=None)
            await subscribe(ws, sid, "private-tenant-acme")
            await ws.recv()
            return ws
        async def main():
            fast = await client(True)
            slow = await client(False)
            print("ready", flush=True)
            got, deadline = 0, asyncio.get_event_loop().time() + 20
            while got < int(sys.argv[2]) and asyncio.get_event_loop().time() < deadline:
                try:
                    m = json.loads(await asyncio.wait_for(fast.recv(), 5))
                    if m.get("event") == "tick": got += 1
                except asyncio.TimeoutError:
                    break
            # The slow one: drain what it has now and see how it ended.
            code = None
            try:
                while True:
                    await asyncio.wait_for(slow.recv(), 5)
            except websockets.exceptions.ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd else None
            except asyncio.TimeoutError:
                code = "open"
            print(json.dumps({"fast": got, "slow_close": code}), flush=True)
        asyncio.run(main())
        """
        let total = 3000
        let peer = Process()
        peer.executableURL = URL(fileURLWithPath: testPython)
        peer.arguments = ["-c", script, String(port), String(total)]
        peer.environment = pythonEnvironment
        let pipe = Pipe()
        peer.standardOutput = pipe
        try peer.run()
        // Wait for "ready", then publish a burst of 3,000 events of ~8 KB (24 MB: far beyond what the kernel buffers
        // for the reader that stopped, and its 64-message queue) through the plane.
        let handle = pipe.fileHandleForReading
        var buffer = await readUntil(handle, "ready\n")
        let payload = String(repeating: "x", count: 8000)
        for i in 0..<total {
            // Published on private-tenant-acme (and the call's and conversation's channels, which nobody holds).
            rig.plane.publish(PatchbayEvent(type: "tick", tenant: "acme", occurredAtMillis: Int64(i), conversationID: "c", data: .object([("p", .string(payload))])))
        }
        await waitForExit(peer)
        buffer.append(handle.readDataToEndOfFile())
        await rig.shutdown()
        let lines = String(decoding: buffer, as: UTF8.self).split(separator: "\n")
        let result = try JSONSerialization.jsonObject(with: Data((lines.last ?? "").utf8)) as? [String: Any] ?? [:]
        #expect(result["fast"] as? Int == total)
        #expect(result["slow_close"] as? Int == 4100)
        #expect(rig.plane.slowSubscribersDropped.load(ordering: .relaxed) == 1)
    }
}
