import WireFormats
import Foundation
import Synchronization
import Testing
@testable import Transport

@Suite("HTTP server over real sockets", .serialized)
struct HTTPServerTests {
    static func routes(_ r: Router) {
        r.on(.GET, "/healthz") { _ in .json(200, #"{"status":"ok"}"#) }
        r.on(.GET, "/apps/{app_id}/channels/{name}") { req in
            .json(200, "{\"app\":\(JSONString.quote(req.pathParameters["app_id"]!)),\"channel\":\(JSONString.quote(req.pathParameters["name"]!)),\"q\":\(JSONString.quote(req.queryValue("info") ?? ""))}")
        }
        r.on(.POST, "/apps/{app_id}/events") { req in
            .json(201, "{\"bytes\":\(req.body.count),\"type\":\(JSONString.quote(req.headers["content-type"] ?? "")),\"sig\":\(JSONString.quote(req.headers["x-test-signature"] ?? ""))}")
        }
        r.captureHeader("X-Test-Signature")
        r.on(.PUT, "/apps/{app_id}/events") { _ in throw HTTPError(409, code: "conflict", message: "already there") }
        r.onAsync(.POST, "/slow") { req in
            try await Task.sleep(for: .milliseconds(50))
            return .text(200, "slow " + req.bodyText)
        }
        r.on(.GET, "/boom") { _ in throw TransportError("unexpected") }
    }

    @Test("A second server on a port in use fails to start (SO_REUSEPORT would otherwise let it take half the traffic)")
    func portInUse() async throws {
        let first = try Support.server(routes: Self.routes)
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = first.port
        config.loops = 2
        let second = Server(configuration: config, router: Router(), logger: Support.logger)
        var refusal = ""
        do { try second.start() } catch { refusal = "\(error)" }
        #expect(refusal.contains("in use"), "\(refusal)")
        // Every connection still reaches the first server.
        for _ in 0..<20 {
            #expect(Support.status(try Support.raw(port: first.port, "GET /apps/1/channels/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200)
        }
        await first.shutdown()
    }

    @Test("Routes by method and path, binds path parameters and decodes the query")
    func routing() throws {
        let server = try Support.server(routes: Self.routes)
        defer { Task { await server.shutdown() } }
        let r = try Support.raw(port: server.port, "GET /apps/42/channels/private-a?info=user_count,subscription_count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(Support.status(r) == 200)
        #expect(Support.body(r) == #"{"app":"42","channel":"private-a","q":"user_count,subscription_count"}"#)
        #expect(r.lowercased().contains("content-type: application/json"))
    }

    @Test("A POST body arrives whole with its headers, non-standard ones included when captured")
    func postBody() throws {
        let server = try Support.server(routes: Self.routes)
        defer { Task { await server.shutdown() } }
        let body = String(repeating: "x", count: 5000)
        let r = try Support.raw(port: server.port, "POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Test-Signature: abc=\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        #expect(Support.status(r) == 201)
        #expect(Support.body(r) == #"{"bytes":5000,"type":"application/json","sig":"abc="}"#)
    }

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var request: String
        var status: Int
        var code: String
        var testDescription: String { "\(status) \(code)" }
    }

    @Test("Errors are JSON with the right status", arguments: [
        ErrorCase(request: "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", status: 404, code: "not_found"),
        ErrorCase(request: "DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", status: 405, code: "method_not_allowed"),
        ErrorCase(request: "PUT /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status: 409, code: "conflict"),
        ErrorCase(request: "GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", status: 500, code: "internal_error"),
        ErrorCase(request: "POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n", status: 413, code: "payload_too_large"),
        ErrorCase(request: "POST /apps/1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n", status: 411, code: "length_required"),
        ErrorCase(request: "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", status: 426, code: "upgrade_required"),
    ])
    func errors(_ c: ErrorCase) throws {
        let server = try Support.server { r in
            Self.routes(r)
            r.webSocket("/ws") { _, _ in EchoHandler() }
        }
        defer { Task { await server.shutdown() } }
        let r = try Support.raw(port: server.port, c.request)
        #expect(Support.status(r) == c.status, "\(r)")
        let json = try JSONSerialization.jsonObject(with: Data(Support.body(r).utf8)) as? [String: [String: String]]
        #expect(json?["error"]?["code"] == c.code, "\(r)")
        if c.status == 405 { #expect(r.lowercased().contains("allow: get, head")) }
    }

    @Test("A body over the limit is refused with 413 even when Content-Length is within it but the limit is small")
    func smallLimit() throws {
        let server = try Support.server({ $0.maxBodyBytes = 1024 }, routes: Self.routes)
        defer { Task { await server.shutdown() } }
        let body = String(repeating: "y", count: 2048)
        let r = try Support.raw(port: server.port, "POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n\(body)")
        #expect(Support.status(r) == 413)
    }

    @Test("A malformed request is answered 400 and the server keeps serving", arguments: [
        "HELLO\r\n\r\n",
        "\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\u{00}\u{01}\u{fc}\u{03}\u{03}",
        "GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n",
    ])
    func malformed(_ text: String) throws {
        let server = try Support.server(routes: Self.routes)
        defer { Task { await server.shutdown() } }
        let r = try Support.raw(port: server.port, text)
        #expect(Support.status(r) == 400, "\(r.debugDescription)")
        #expect(Support.body(r).contains("bad_request"))
        let ok = try Support.raw(port: server.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(Support.status(ok) == 200)
    }

    @Test("Broken header syntax never stops the server")
    func brokenHeaders() throws {
        let server = try Support.server({ $0.httpIdleTimeoutSeconds = 1 }, routes: Self.routes)
        defer { Task { await server.shutdown() } }
        for bad in ["GET / HTTP/1.1\r\nHo\u{01}st: x\r\n\r\n", "GET /healthz HTTP/1.1\r\n" + String(repeating: "X-A: b\r\n", count: 5000) + "\r\n",
                    "POST /apps/1/events HTTP/1.1\r\nContent-Length: -5\r\n\r\n"] {
            let r = try Support.raw(port: server.port, bad)
            if let s = Support.status(r) { #expect(s >= 400, "\(bad.prefix(40)) -> \(r.prefix(80))") }
        }
        let ok = try Support.raw(port: server.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(Support.status(ok) == 200)
    }

    @Test("Async handlers run off the loop and answer through the mailbox; keep-alive carries several requests")
    func asyncAndKeepAlive() async throws {
        let server = try Support.server(routes: Self.routes)
        defer { Task { await server.shutdown() } }
        let two = "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let r = try Support.raw(port: server.port, two)
        #expect(r.contains("slow abc"))
        #expect(r.components(separatedBy: "HTTP/1.1 200").count == 3, "\(r)")
    }

    @Test("Upgrade: h2c is ignored: the request is answered in HTTP/1.1 (as curl --http2 on http:// sends it)")
    func h2cUpgradeIgnored() throws {
        let server = try Support.server(routes: Self.routes)
        defer { Task { await server.shutdown() } }
        let request = "GET /apps/7/channels/c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        let r = try Support.raw(port: server.port, request)
        #expect(r.hasPrefix("HTTP/1.1 200"), "\(r)")
        #expect(r.contains(#""app":"7""#))
        let missing = try Support.raw(port: server.port, "GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
        #expect(Support.status(missing) == 404)
        let slow = try Support.raw(port: server.port, "POST /slow HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, close\r\nContent-Length: 0\r\n\r\n")
        #expect(Support.status(slow) != nil, "never a hang-up without an answer: \(slow)")
    }
}
