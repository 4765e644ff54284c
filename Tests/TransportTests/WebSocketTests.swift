import Foundation
import Synchronization
import Testing
@testable import Transport

/// Refuses upgrades without `?token=ok` with 403, as a signature check would.
@Suite("WebSocket server and client over real sockets", .serialized)
struct WebSocketTests {
    static func routes(_ r: Router) {
        r.webSocket("/echo/{room}") { req, _ in
            guard req.queryValue("token") != "bad" else { throw HTTPError(403, code: "forbidden", message: "bad token") }
            return EchoHandler()
        }
    }

    @Test("Our own client echoes text and binary through the server, on the loop that opened it")
    func ownClientEcho() async throws {
        let server = try Support.server(routes: Self.routes)
        defer { Task { await server.shutdown() } }
        let recorder = RecordingHandler()
        recorder.onOpen = { c in
            c.send(text: "hola")
            c.send(text: String(repeating: "ñ", count: 20_000)) // 40 KB: several fragments on the wire
        }
        let loop = server.loops[0]
        let box = LoopBound(recorder)
        let port = server.port
        loop.execute { _ = loop.connectWebSocket(url: "ws://127.0.0.1:\(port)/echo/a?x=1", handler: box.value) }
        #expect(await Support.eventually { recorder.state.withLock { $0.messages.count == 2 } })
        let messages = recorder.state.withLock { $0.messages }
        #expect(messages.first == "hola")
        #expect(messages.last == String(repeating: "ñ", count: 20_000))
        #expect(server.openWebSockets.load(ordering: .relaxed) == 2)
    }

    @Test("An independent client (Python websockets) gets echoes, 1009 past the size limit, and 403 before upgrading")
    func pythonClient() async throws {
        let server = try Support.server({ $0.maxWebSocketMessageBytes = 4096 }, routes: Self.routes)
        defer { Task { await server.shutdown() } }
        let script = """
        import asyncio, sys, websockets
        async def main(port):
            async with websockets.connect(f"ws://127.0.0.1:{port}/echo/room1") as ws:
                await ws.send("hello"); print("text", await ws.recv())
                await ws.send(b"\\x00\\x01\\x02"); print("binary", (await ws.recv()).hex())
                await ws.send("x" * 5000)
                try:
                    await ws.recv()
                except websockets.ConnectionClosed as e:
                    print("closed", e.rcvd.code if e.rcvd else None)
            try:
                async with websockets.connect(f"ws://127.0.0.1:{port}/echo/room1?token=bad") as ws:
                    print("unexpected open")
            except Exception as e:
                print("refused", getattr(getattr(e, "response", None), "status_code", None) or getattr(e, "status_code", None))
        asyncio.run(main(int(sys.argv[1])))
        """
        let r = try Support.python(script, [String(server.port)])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").map(String.init) == ["text hello", "binary 000102", "closed 1009", "refused 403"], "\(r.stdout) \(r.stderr)")
    }

    @Test("A client closed before it opened closes as soon as it opens, with the code it was given")
    func closeBeforeOpen() async throws {
        let server = try Support.server(routes: Self.routes)
        defer { Task { await server.shutdown() } }
        let recorder = RecordingHandler()
        let loop = server.loops[0]
        let box = LoopBound(recorder)
        let port = server.port
        loop.execute {
            let c = loop.connectWebSocket(url: "ws://127.0.0.1:\(port)/echo/x", handler: box.value)
            c.close(.normal, reason: "changed my mind")
        }
        #expect(await Support.eventually { recorder.state.withLock { $0.closed != nil } })
        #expect(recorder.state.withLock { $0.closed?.0 } == 1000)
        #expect(await Support.eventually { server.openWebSockets.load(ordering: .relaxed) == 0 })
    }

    @Test("A client connection to a closed port reports 1006 to its handler")
    func connectionRefused() async throws {
        let server = try Support.server(routes: Self.routes)
        defer { Task { await server.shutdown() } }
        let probe = try Listener(host: "127.0.0.1", port: 0)
        let deadPort = probe.port
        probe.close()
        let recorder = RecordingHandler()
        let loop = server.loops[1]
        let box = LoopBound(recorder)
        loop.execute { _ = loop.connectWebSocket(url: "ws://127.0.0.1:\(deadPort)/x", handler: box.value) }
        #expect(await Support.eventually { recorder.state.withLock { $0.closed != nil } })
        #expect(recorder.state.withLock { $0.closed?.0 } == 1006)
        #expect(recorder.state.withLock { $0.opened } == false)
    }

    static let pythonTLSProbe = """
    import asyncio, ssl, sys, websockets
    async def main(port, ca):
        ctx = ssl.create_default_context(cafile=ca)
        async with websockets.connect(f"wss://localhost:{port}/echo/x", ssl=ctx) as ws:
            await ws.send("secure-python"); print(await ws.recv())
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
    """

    @Test("The wss client verifies certificates: trusted with the test CA, refused without it")
    func tlsClient() throws {
        // No other test may create an lws context during these handshakes (see Server.contextCreation).
        Server.contextCreation.lock()
        defer { Server.contextCreation.unlock() }
        let dir = NSTemporaryDirectory() + "patchbay-tls-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gen = try Support.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                                       "-keyout", "\(dir)/key.pem", "-out", "\(dir)/cert.pem",
                                                       "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        try #require(gen.status == 0, "\(gen.stderr)")
        let tlsServer = try Support.server({
            $0.tlsCertificatePath = "\(dir)/cert.pem"
            $0.tlsKeyPath = "\(dir)/key.pem"
        }, routes: Self.routes)
        defer { Task { await tlsServer.shutdown() } }
        let independent = try Support.run(Support.python, ["-c", Self.pythonTLSProbe, String(tlsServer.port), "\(dir)/cert.pem"])
        #expect(independent.stdout == "secure-python\n", "the TLS listener serves an independent client: \(independent.stderr)")

        for (trust, expectOpen) in [(true, true), (false, false)] {
            let client = try Support.server({ if trust { $0.clientCAFile = "\(dir)/cert.pem" } }, routes: { _ in })
            defer { Task { await client.shutdown() } }
            let recorder = RecordingHandler()
            recorder.onOpen = { $0.send(text: "secure") }
            let loop = client.loops[0]
            let box = LoopBound(recorder)
            let port = tlsServer.port
            loop.execute { _ = loop.connectWebSocket(url: "wss://localhost:\(port)/echo/tls", handler: box.value) }
            if expectOpen {
                #expect(Support.eventually { recorder.state.withLock { $0.messages == ["secure"] } })
            } else {
                #expect(Support.eventually { recorder.state.withLock { $0.closed != nil } })
                #expect(recorder.state.withLock { $0.opened } == false)
                let code = recorder.state.withLock { $0.closed?.0 }
                #expect(code == 1015 || code == 1006, "closed with \(String(describing: code))")
            }
        }
    }
}

@Suite("Name resolution off the loop")
struct ResolveTests {
    @Test("localhost resolves, IPv4 first; IP literals are recognised; unknown names fail")
    func resolve() {
        #expect(EventLoop.resolve(host: "localhost", port: 80) == "127.0.0.1")
        #expect(EventLoop.isIPLiteral("127.0.0.1"))
        #expect(EventLoop.isIPLiteral("::1"))
        #expect(!EventLoop.isIPLiteral("api.elevenlabs.io"))
        #expect(EventLoop.resolve(host: "no-such-host.invalid", port: 80) == nil)
    }
}
