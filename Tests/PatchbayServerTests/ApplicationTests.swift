import Foundation
import Logging
import Testing
import TestSupport
import Transport
@testable import PatchbayServer

/// Helpers shared by the server-level tests.
enum ServerSupport {
    static let repoRoot = repositoryRoot

    static var python: String { testPython }

    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "patchbay-data-\(UInt64.random(in: 0...UInt64.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// GET through a raw socket (Connection: close); returns status and body.
    static func get(_ port: Int, _ path: String) throws -> (status: Int, body: String, raw: String) {
        let script = """
        import socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        s.sendall(f"GET {sys.argv[2]} HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        sys.stdout.write(data.decode())
        """
        let r = try run(python, ["-c", script, String(port), path])
        let raw = r.stdout
        let status = Int(raw.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = raw.range(of: "\r\n\r\n").map { String(raw[$0.upperBound...]) } ?? ""
        return (status, body, raw)
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeoutSeconds: Double = 30) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try runProgram(executable, arguments, environment: environment, timeoutSeconds: timeoutSeconds)
        return (r.status, r.stdout, r.stderr)
    }

    /// The same, off the cooperative pool (for async tests).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeoutSeconds: Double = 30) async throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try await runProgram(executable, arguments, environment: environment, timeoutSeconds: timeoutSeconds)
        return (r.status, r.stdout, r.stderr)
    }

    static func freePort() throws -> Int { freeLoopbackPort() }
}

@Suite("Application: operational endpoints in-process", .serialized)
struct ApplicationTests {
    func makeApp(_ env: [String: String] = [:]) throws -> Application {
        var e = env
        e["PATCHBAY_PORT"] = "0"
        e["PATCHBAY_HOST"] = "127.0.0.1"
        e["PATCHBAY_LOOPS"] = "2"
        e["PATCHBAY_DATA_DIR"] = e["PATCHBAY_DATA_DIR"] ?? ServerSupport.temporaryDirectory()
        let config = try ConfigLoader.load(environment: e)
        var logger = Logger(label: "test.app")
        logger.logLevel = .warning
        let app = Application(config: config, logger: logger)
        try app.start()
        return app
    }

    @Test("healthz, readyz and metrics answer; metrics count requests by route template, never by raw path")
    func operational() async throws {
        let app = try makeApp()
        let health = try ServerSupport.get(app.port, "/healthz")
        #expect(health.status == 200)
        #expect(health.body.contains("\"status\":\"ok\""))
        let ready = try ServerSupport.get(app.port, "/readyz")
        #expect(ready.status == 200)
        let missing = try ServerSupport.get(app.port, "/no/such/path")
        #expect(missing.status == 404)
        #expect(missing.body.contains("\"code\":\"not_found\""))
        let metrics = try ServerSupport.get(app.port, "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.raw.lowercased().contains("content-type: text/plain; version=0.0.4"))
        #expect(metrics.body.contains(#"patchbay_http_requests_total{route="/healthz",method="GET",status="2xx"} 1"#))
        #expect(metrics.body.contains(#"patchbay_http_requests_total{route="unmatched",method="GET",status="4xx"} 1"#))
        #expect(!metrics.body.contains("/no/such/path"))
        #expect(metrics.body.contains("patchbay_transport_event_loops 2"))
        #expect(metrics.body.contains("process_resident_memory_bytes"))
        await app.shutdown()
        let after = try? ServerSupport.get(app.port, "/healthz")
        #expect(after?.status != 200, "nothing serves after shutdown")
    }

    @Test("readyz is 503 with a JSON error when the data directory is not writable")
    func notReady() async throws {
        let dir = ServerSupport.temporaryDirectory()
        let app = try makeApp(["PATCHBAY_DATA_DIR": dir])
        chmod(dir, 0o500)
        defer { chmod(dir, 0o700) }
        let ready = try ServerSupport.get(app.port, "/readyz")
        if getuid() != 0 { // root writes anywhere: the check cannot fail there
            #expect(ready.status == 503)
            #expect(ready.body.contains("not_ready"))
        }
        await app.shutdown()
    }
}

@Suite("The patchbay binary", .serialized)
struct BinaryTests {
    static var binary: String { ServerSupport.repoRoot.appendingPathComponent(".build/debug/patchbay").path }

    @Test("A bad configuration value exits 2 naming the key; config check prints a redacted summary")
    func configExitCodes() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the patchbay binary first (swift build)")
        let bad = try await ServerSupport.run(Self.binary, ["config", "check"], environment: ["PATCHBAY_PORT": "http"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("PATCHBAY_PORT"))
        let good = try await ServerSupport.run(Self.binary, ["config", "check"], environment: ["TWILIO_AUTH_TOKEN": "s3cr3t-value"])
        #expect(good.status == 0)
        #expect(good.stdout.contains("configuration OK"))
        #expect(!good.stdout.contains("s3cr3t-value"))
        let serveBad = try await ServerSupport.run(Self.binary, ["serve"], environment: ["PATCHBAY_LOG_FORMAT": "yaml"])
        #expect(serveBad.status == 2)
        #expect(serveBad.stderr.contains("PATCHBAY_LOG_FORMAT"))
    }

    @Test("SIGTERM: WebSockets get 1001, an in-flight request still gets its whole answer, the process exits 0")
    func gracefulSigterm() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the patchbay binary first (swift build)")
        let port = try ServerSupport.freePort()
        let data = ServerSupport.temporaryDirectory()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: Self.binary)
        server.arguments = ["serve"]
        server.environment = ["PATCHBAY_PORT": String(port), "PATCHBAY_HOST": "127.0.0.1", "PATCHBAY_DATA_DIR": data,
                              "PATCHBAY_DIAGNOSTIC_ECHO": "true", "PATCHBAY_LOG_FORMAT": "json", "PATCHBAY_LOOPS": "2"]
        let serverErr = Pipe()
        server.standardError = serverErr
        server.standardOutput = Pipe()
        try server.run()
        defer { if server.isRunning { server.terminate() } }

        let script = """
        import asyncio, os, signal, socket, sys, time, websockets
        port, pid = int(sys.argv[1]), int(sys.argv[2])
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
            except OSError:
                time.sleep(0.05)
        async def main():
            sockets = [await websockets.connect(f"ws://127.0.0.1:{port}/diagnostics/echo") for _ in range(3)]
            for i, ws in enumerate(sockets):
                await ws.send(f"ping {i}")
                assert await ws.recv() == f"ping {i}"
            # An HTTP request whose body is still arriving when SIGTERM lands.
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            raw.sendall(b"POST /healthz HTTP/1.1\\r\\nHost: t\\r\\nContent-Length: 10\\r\\n\\r\\nabc")
            await asyncio.sleep(0.2)
            os.kill(pid, signal.SIGTERM)
            await asyncio.sleep(0.2)
            raw.sendall(b"defghij")
            response = b""
            while True:
                chunk = raw.recv(65536)
                if not chunk: break
                response += chunk
            print("http", response.split(b"\\r\\n")[0].decode())
            for ws in sockets:
                try:
                    await asyncio.wait_for(ws.recv(), 5)
                except websockets.ConnectionClosed as e:
                    print("ws", e.rcvd.code if e.rcvd else "no close frame")
        asyncio.run(main())
        """
        let r = try await ServerSupport.run(ServerSupport.python, ["-c", script, String(port), String(server.processIdentifier)])
        await waitForExit(server, seconds: 15)
        #expect(!server.isRunning)
        #expect(server.terminationStatus == 0)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").map(String.init) == ["http HTTP/1.1 405 Method Not Allowed", "ws 1001", "ws 1001", "ws 1001"],
                "\(r.stdout)\n\(r.stderr)")
        let log = String(decoding: serverErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("\"msg\":\"shutdown requested\""))
        #expect(log.contains("\"msg\":\"stopped\""))
    }
}
