import Foundation
import Logging
import Testing
import TestSupport
@testable import HTTPClient

/// A Python `http.server` peer on 127.0.0.1 (optionally TLS), started per test and stopped after.
final class PeerServer {
    static let script = #"""
    import json, ssl, sys, time
    from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a): pass
        def reply(self, status, body, ctype="application/json", extra=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra: self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD": self.wfile.write(body)
        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            path, _, query = self.path.partition("?")
            if path == "/echo":
                self.reply(200, json.dumps({"method": self.command, "path": self.path, "body": body.decode(),
                    "headers": {k.lower(): v for k, v in self.headers.items()}}).encode(), extra=[("X-Peer", "python")])
            elif path.startswith("/status/"):
                self.reply(int(path.split("/")[2]), b'{"error":"as asked"}', extra=[("Retry-After", "7")])
            elif path == "/slow":
                time.sleep(int(query.split("=")[1]) / 1000.0); self.reply(200, b"slow")
            elif path == "/big":
                self.reply(200, b"z" * int(query.split("=")[1]), "application/octet-stream")
            elif path == "/redirect":
                self.reply(302, b"", extra=[("Location", "/echo")])
            else:
                self.reply(404, b"{}")
        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    if len(sys.argv) > 2:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()
    """#

    let process = Process()
    let port: Int

    init(tls: (cert: String, key: String)? = nil) throws {
        process.executableURL = URL(fileURLWithPath: testPython)
        process.arguments = ["-c", Self.script] + (tls.map { [$0.cert, $0.key] } ?? [])
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = Data()
        while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data([0x0A]) { line.append(byte) }
        guard let p = Int(String(decoding: line, as: UTF8.self)) else { throw HTTPClientError(kind: .other, curlCode: 0, message: "peer did not start", url: "") }
        port = p
    }

    deinit {
        kill(process.processIdentifier, SIGKILL) // SIGTERM may be ignored: the test process can pass SIG_IGN on
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(5_000) }
    }
}

func makeClient(_ tweak: (inout HTTPClient.Configuration) -> Void = { _ in }) -> HTTPClient {
    var c = HTTPClient.Configuration()
    tweak(&c)
    var logger = Logger(label: "test.http")
    logger.logLevel = .warning
    return HTTPClient(configuration: c, logger: logger)
}

@Suite("HTTP client over libcurl against a Python peer", .serialized)
struct HTTPClientTests {
    @Test("A POST carries method, headers and body; the response carries status, headers and body")
    func roundTrip() async throws {
        let peer = try PeerServer()
        let client = makeClient()
        defer { client.shutdown() }
        let r = try await client.execute(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(peer.port)/echo?x=1",
                                                           headers: [("Content-Type", "application/json"), ("X-Signature", "abc")],
                                                           body: Array(#"{"hola":"mundo"}"#.utf8)))
        #expect(r.status == 200)
        #expect(r.header("x-peer") == "python")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
        #expect(json["method"] as? String == "POST")
        #expect(json["path"] as? String == "/echo?x=1")
        #expect(json["body"] as? String == #"{"hola":"mundo"}"#)
        let headers = try #require(json["headers"] as? [String: String])
        #expect(headers["x-signature"] == "abc")
        #expect(headers["user-agent"] == "patchbay")
        #expect(headers["expect"] == nil)
    }

    @Test("Error statuses are responses, redirects are not followed", arguments: [(404, "/status/404"), (503, "/status/503"), (302, "/redirect")])
    func statuses(_ c: (Int, String)) async throws {
        let peer = try PeerServer()
        let client = makeClient()
        defer { client.shutdown() }
        let r = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(peer.port)\(c.1)"))
        #expect(r.status == c.0)
        if c.0 == 503 { #expect(r.header("Retry-After") == "7") }
        if c.0 == 302 { #expect(r.header("location") == "/echo") }
    }

    struct FailureCase: Sendable, CustomTestStringConvertible {
        var path: String
        var kind: HTTPClientError.Kind
        var testDescription: String { "\(path) -> \(kind)" }
    }

    @Test("Failures are typed: time-out, oversized body, refused connection, bad URL", arguments: [
        FailureCase(path: "/slow?ms=2000", kind: .timedOut),
        FailureCase(path: "/big?bytes=300000", kind: .responseTooLarge),
        FailureCase(path: "closed-port", kind: .connectFailed),
        FailureCase(path: "ftp-url", kind: .invalidURL),
    ])
    func failures(_ c: FailureCase) async throws {
        let peer = try PeerServer()
        let client = makeClient { $0.maxResponseBytes = 100_000 }
        defer { client.shutdown() }
        var url = "http://127.0.0.1:\(peer.port)\(c.path)"
        if c.path == "closed-port" { url = "http://127.0.0.1:1/x" }
        if c.path == "ftp-url" { url = "ftp://127.0.0.1/x" }
        do {
            _ = try await client.execute(HTTPClientRequest(url: url, timeout: .milliseconds(300)))
            Issue.record("expected \(c.kind)")
        } catch let e as HTTPClientError {
            #expect(e.kind == c.kind, "\(e)")
            #expect(!e.url.contains("?"), "the query never appears in errors")
        }
    }

    @Test("A hundred concurrent requests all get their own answers")
    func concurrency() async throws {
        let peer = try PeerServer()
        let client = makeClient()
        defer { client.shutdown() }
        let port = peer.port
        let results = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for i in 0..<100 {
                group.addTask {
                    let r = try await client.execute(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(port)/echo", body: Array("n=\(i)".utf8)))
                    let json = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]
                    return (i, json?["body"] as? String ?? "")
                }
            }
            var all: [(Int, String)] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 100)
        for (i, body) in results { #expect(body == "n=\(i)") }
    }

    @Test("Cancelling the calling task cancels the transfer")
    func cancellation() async throws {
        let peer = try PeerServer()
        let client = makeClient()
        defer { client.shutdown() }
        let port = peer.port
        let task = Task { try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/slow?ms=5000")) }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        do {
            _ = try await task.value
            Issue.record("expected cancellation")
        } catch let e as HTTPClientError {
            #expect(e.kind == .cancelled)
        }
    }

    @Test("TLS: verified against the CA it is given, refused without it")
    func tls() async throws {
        let dir = NSTemporaryDirectory() + "patchbay-curl-tls-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gen = try await runProgram("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "\(dir)/key.pem",
                                                      "-out", "\(dir)/cert.pem", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        try #require(gen.status == 0, "\(gen.stderr)")
        let peer = try PeerServer(tls: ("\(dir)/cert.pem", "\(dir)/key.pem"))
        let trusting = makeClient { $0.caFile = "\(dir)/cert.pem" }
        defer { trusting.shutdown() }
        let ok = try await trusting.execute(HTTPClientRequest(url: "https://localhost:\(peer.port)/echo"))
        #expect(ok.status == 200)
        let strict = makeClient()
        defer { strict.shutdown() }
        do {
            _ = try await strict.execute(HTTPClientRequest(url: "https://localhost:\(peer.port)/echo"))
            Issue.record("an untrusted certificate was accepted")
        } catch let e as HTTPClientError {
            #expect(e.kind == .tlsFailed, "\(e)")
        }
    }

    @Test("After shutdown, requests fail with .shutdown")
    func shutdownAndResolve() async throws {
        let client = makeClient()
        client.shutdown()
        do {
            _ = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:1/"))
            Issue.record("expected shutdown")
        } catch let e as HTTPClientError {
            #expect(e.kind == .shutdown)
        }
    }
}
