// The libwebsockets protocol callback: every event of every connection of a loop arrives here, on that loop's
// thread, and is dispatched to the loop (HTTP) or to the connection's WebSocketConnection.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import WireFormats
internal import CWebSockets

let lwsCallback: CWebSockets_callback = { wsi, reason, user, input, len in
    guard let wsi, let ctx = lws_get_context(wsi), let raw = lws_context_user(ctx) else { return 0 }
    let loop = Unmanaged<EventLoop>.fromOpaque(raw).takeUnretainedValue()
    return loop.handle(wsi: wsi, reason: reason, user: user, input: input, length: len)
}

extension EventLoop {
    func handle(wsi: OpaquePointer, reason: lws_callback_reasons, user: UnsafeMutableRawPointer?,
                input: UnsafeMutableRawPointer?, length: Int) -> Int32 {
        switch reason {
        case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
            drainMailbox()
            return 0

        case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS:
            // `user` is the client SSL_CTX: trust the system store, plus the configured extra CA file.
            if let user { _ = CWebSockets_ssl_ctx_trust_defaults(user, configuration.clientCAFile) }
            return 0


        // HTTP server
        case LWS_CALLBACK_HTTP:
            return onHTTPRequest(wsi, uri: input, length: length)
        case LWS_CALLBACK_HTTP_BODY:
            return onHTTPBody(wsi, input, length)
        case LWS_CALLBACK_HTTP_BODY_COMPLETION:
            return onHTTPBodyComplete(wsi)
        case LWS_CALLBACK_HTTP_WRITEABLE:
            return onHTTPWritable(wsi)
        case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
            return onConfirmUpgrade(wsi, protocolName: input)

        // WebSocket, both roles
        case LWS_CALLBACK_ESTABLISHED, LWS_CALLBACK_CLIENT_ESTABLISHED:
            existingPeer(wsi)?.webSocket?.didOpen(wsi: wsi)
            return 0
        case LWS_CALLBACK_RECEIVE, LWS_CALLBACK_CLIENT_RECEIVE:
            guard let ws = existingPeer(wsi)?.webSocket else { return -1 }
            return ws.didReceive(wsi: wsi, input, length)
        case LWS_CALLBACK_SERVER_WRITEABLE, LWS_CALLBACK_CLIENT_WRITEABLE:
            guard let ws = existingPeer(wsi)?.webSocket else { return 0 }
            return ws.writable(wsi: wsi)
        case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
            existingPeer(wsi)?.webSocket?.peerSentClose(input, length)
            return 0
        case LWS_CALLBACK_CLOSED, LWS_CALLBACK_CLIENT_CLOSED:
            existingPeer(wsi)?.webSocket?.didTerminate(loop: self)
            return 0
        case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            let message = input.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? "connection failed"
            existingPeer(wsi)?.webSocket?.connectFailed(message)
            return 0
        case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
            guard let ws = existingPeer(wsi)?.webSocket, let input else { return 0 }
            return ws.appendHandshakeHeaders(input.assumingMemoryBound(to: UnsafeMutablePointer<CChar>?.self), length)

        // Bytes lws could not parse as HTTP (LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG).
        case LWS_CALLBACK_RAW_ADOPT:
            let p = peer(for: wsi)
            p.isRawFallback = true
            lws_callback_on_writable(wsi)
            return 0
        case LWS_CALLBACK_RAW_WRITEABLE:
            guard let p = existingPeer(wsi), p.isRawFallback else { return -1 }
            server.takeUnretainedValue().countAnswer(status: 400)
            let error = HTTPError(400, code: "bad_request", message: "malformed HTTP request")
            let body = error.response.body
            let head = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: \(body.count)\r\nconnection: close\r\n\r\n"
            let bytes = Array(head.utf8) + body
            let dst = sendBuffer.payload(count: bytes.count)
            bytes.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            _ = lws_write(wsi, dst.assumingMemoryBound(to: UInt8.self), bytes.count, LWS_WRITE_HTTP) // LWS_WRITE_RAW is a macro for LWS_WRITE_HTTP
            return -1
        case LWS_CALLBACK_RAW_RX:
            return 0
        case LWS_CALLBACK_RAW_RX_FILE:
            if wsi == listenWSI { acceptPending() }
            return 0
        case LWS_CALLBACK_RAW_CLOSE_FILE:
            if wsi == listenWSI { listenWSI = nil; listenFD = -1 }
            return 0

        case LWS_CALLBACK_WSI_DESTROY:
            release(wsi)
            return 0

        default:
            return 0
        }
    }

    // MARK: - HTTP

    private static let methodTokens: [(lws_token_indexes, HTTPMethod)] = [
        (WSI_TOKEN_GET_URI, .GET), (WSI_TOKEN_POST_URI, .POST), (WSI_TOKEN_PUT_URI, .PUT), (WSI_TOKEN_PATCH_URI, .PATCH),
        (WSI_TOKEN_DELETE_URI, .DELETE), (WSI_TOKEN_HEAD_URI, .HEAD), (WSI_TOKEN_OPTIONS_URI, .OPTIONS),
    ]

    /// Header tokens lws parses, with their lowercased names (colon dropped). Method and pseudo tokens excluded.
    private static let headerTokens: [(lws_token_indexes, String)] = {
        var out: [(lws_token_indexes, String)] = []
        for i in 0..<Int(WSI_TOKEN_COUNT.rawValue) {
            let token = lws_token_indexes(rawValue: UInt32(i))
            guard let cName = lws_token_to_string(token) else { continue }
            let name = String(cString: cName)
            guard name.hasSuffix(":"), !name.hasPrefix(":") else { continue }
            out.append((token, String(name.dropLast()).lowercased()))
        }
        return out
    }()

    func copyHeader(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> String? {
        let n = lws_hdr_total_length(wsi, token)
        guard n > 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(n) + 1)
        let copied = lws_hdr_copy(wsi, &buffer, Int32(buffer.count), token)
        guard copied >= 0 else { return nil }
        return String(decoding: buffer[0..<Int(copied)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The query string, rebuilt from lws's fragments. lws splits the query at `&`, URL-decodes each `name=value`
    /// and, asked for the whole header, joins the pieces with `,`; so each piece is read alone and re-encoded, giving
    /// back a raw query that `FormEncoding` decodes exactly (values holding `&`, `=` or `,` survive).
    func copyQuery(_ wsi: OpaquePointer) -> String {
        let total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS)
        guard total > 0 else { return "" }
        var buffer = [CChar](repeating: 0, count: Int(total) + 1)
        var parts: [String] = []
        var index: Int32 = 0
        while true {
            let n = lws_hdr_copy_fragment(wsi, &buffer, Int32(buffer.count), WSI_TOKEN_HTTP_URI_ARGS, index)
            guard n >= 0 else { break }
            let piece = String(decoding: buffer[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let eq = piece.firstIndex(of: "=") {
                parts.append(FormEncoding.encode(String(piece[..<eq])) + "=" + FormEncoding.encode(String(piece[piece.index(after: eq)...])))
            } else if !piece.isEmpty {
                parts.append(FormEncoding.encode(piece))
            }
            index += 1
        }
        return parts.joined(separator: "&")
    }

    func readRequestHead(_ wsi: OpaquePointer, into p: Peer) {
        var headers = HTTPHeaders()
        for (token, name) in Self.headerTokens {
            if let v = copyHeader(wsi, token) { headers.add(name: name, value: v) }
        }
        for name in router.capturedHeaders {
            let key = name + ":"
            let n = key.withCString { lws_hdr_custom_length(wsi, $0, Int32(key.utf8.count)) }
            guard n >= 0 else { continue }
            var buffer = [CChar](repeating: 0, count: Int(n) + 1)
            let copied = key.withCString { lws_hdr_custom_copy(wsi, &buffer, Int32(buffer.count), $0, Int32(key.utf8.count)) }
            if copied >= 0 {
                headers.add(name: name, value: String(decoding: buffer[0..<Int(copied)].map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        p.headers = headers
        p.query = copyQuery(wsi)
        var address = [CChar](repeating: 0, count: 64)
        _ = lws_get_peer_simple(wsi, &address, 63)
        p.remoteAddress = String(cString: address)
    }

    func onHTTPRequest(_ wsi: OpaquePointer, uri: UnsafeMutableRawPointer?, length: Int) -> Int32 {
        let p = peer(for: wsi)
        p.resetRequest()
        let srv = server.takeUnretainedValue()
        if !p.countedInFlight { p.countedInFlight = true; srv.inFlightRequests.add(1, ordering: .relaxed) }
        p.path = uri.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: length), as: UTF8.self) } ?? "/"
        readRequestHead(wsi, into: p)
        guard let method = Self.methodTokens.first(where: { lws_hdr_total_length(wsi, $0.0) > 0 })?.1 else {
            reject(p, HTTPError(405, code: "method_not_allowed", message: "method not supported"), close: true)
            return 0
        }
        p.method = method
        p.headOnly = method == .HEAD
        let contentLength = p.headers["content-length"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        if contentLength == nil, let te = p.headers["transfer-encoding"], te.lowercased().contains("chunked") {
            reject(p, HTTPError(411, code: "length_required", message: "request bodies need a Content-Length"), close: true)
            return 0
        }
        if let cl = contentLength, cl > configuration.maxBodyBytes {
            reject(p, HTTPError(413, code: "payload_too_large",
                                message: "request body of \(cl) bytes exceeds the limit of \(configuration.maxBodyBytes)"), close: true)
            return 0
        }
        if let cl = contentLength, cl > 0 || method == .POST {
            p.awaitingBody = true // lws delivers HTTP_BODY then HTTP_BODY_COMPLETION (also for an explicit POST of 0)
            if cl > 0 { p.body.reserveCapacity(cl) }
            return 0
        }
        dispatch(p)
        return 0
    }

    func onHTTPBody(_ wsi: OpaquePointer, _ input: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        guard let p = existingPeer(wsi), !p.rejected else { return 0 }
        if let input, length > 0 {
            if p.body.count + length > configuration.maxBodyBytes {
                reject(p, HTTPError(413, code: "payload_too_large", message: "request body exceeds the limit of \(configuration.maxBodyBytes)"), close: true)
                return 0
            }
            p.body.append(contentsOf: UnsafeRawBufferPointer(start: input, count: length))
        }
        return 0
    }

    func onHTTPBodyComplete(_ wsi: OpaquePointer) -> Int32 {
        guard let p = existingPeer(wsi), !p.rejected, p.awaitingBody else { return 0 }
        p.awaitingBody = false
        dispatch(p)
        return 0
    }

    func reject(_ p: Peer, _ error: HTTPError, close: Bool) {
        p.rejected = true
        p.closeAfterResponse = close
        respond(p, error.response)
    }

    /// Routes a complete request and runs its handler, on the loop or off it.
    func dispatch(_ p: Peer) {
        guard let method = p.method else { return }
        if draining { p.closeAfterResponse = true }
        switch router.match(method: method, path: p.path, webSocket: false) {
        case .notFound:
            respond(p, HTTPError.notFound("no route for \(method.rawValue) \(p.path)").response)
        case .methodNotAllowed(let allowed):
            let list = allowed.map(\.rawValue).joined(separator: ", ")
            respond(p, HTTPError(405, code: "method_not_allowed", message: "\(method.rawValue) is not allowed on \(p.path)",
                                 headers: ["allow": list]).response)
        case .webSocket:
            respond(p, HTTPError(426, code: "upgrade_required", message: "this path takes WebSocket connections").response)
        case .handler(let handler, let template, let parameters):
            p.routeTemplate = template
            let request = HTTPRequest(method: method, path: p.path, query: p.query, headers: p.headers, body: p.body,
                                      pathParameters: parameters, remoteAddress: p.remoteAddress)
            switch handler {
            case .onLoop(let run):
                respond(p, Self.run(run, request, logger: logger))
            case .async(let run):
                p.awaitingHandler = true
                let peerID = p.id
                let logger = self.logger
                Task { [self] in
                    let response: HTTPResponse
                    do {
                        response = try await run(request)
                    } catch let e as HTTPError {
                        response = e.response
                    } catch {
                        logger.error("handler failed", metadata: ["http.path": "\(request.path)", "error": "\(error)"])
                        response = HTTPError.internalError().response
                    }
                    self.execute { [self] in
                        guard let p = self.peers[peerID], p.awaitingHandler else { return } // the client went away
                        p.awaitingHandler = false
                        self.respond(p, response)
                    }
                }
            }
        }
    }

    static func run(_ handler: (HTTPRequest) throws -> HTTPResponse, _ request: HTTPRequest, logger: Logger) -> HTTPResponse {
        do {
            return try handler(request)
        } catch let e as HTTPError {
            return e.response
        } catch {
            logger.error("handler failed", metadata: ["http.path": "\(request.path)", "error": "\(error)"])
            return HTTPError.internalError().response
        }
    }

    func respond(_ p: Peer, _ response: HTTPResponse) {
        p.response = response
        if let wsi = p.wsi { lws_callback_on_writable(wsi) }
    }

    func onHTTPWritable(_ wsi: OpaquePointer) -> Int32 {
        guard let p = existingPeer(wsi), let response = p.response else { return 0 }
        p.response = nil
        let srv = server.takeUnretainedValue()
        srv.countAnswer(status: response.status)
        responseObserver?(p.routeTemplate, p.method?.rawValue ?? "OTHER", response.status)
        let body = p.headOnly ? [] : response.body
        let headerBudget = 512 + response.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        let start = sendBuffer.payload(count: headerBudget + body.count).assumingMemoryBound(to: UInt8.self)
        let end = start + headerBudget
        var cursor: UnsafeMutablePointer<UInt8>? = start
        var failed = lws_add_http_header_status(wsi, UInt32(response.status) | UInt32(LWSAHH_FLAG_NO_SERVER_NAME), &cursor, end) != 0
        for (name, value) in response.headers where name != "content-length" && name != "connection" {
            let n = name + ":"
            failed = failed || n.withCString { cn in
                value.withCString { cv in
                    lws_add_http_header_by_name(wsi, UnsafeRawPointer(cn).assumingMemoryBound(to: UInt8.self),
                                                UnsafeRawPointer(cv).assumingMemoryBound(to: UInt8.self), Int32(value.utf8.count), &cursor, end) != 0
                }
            }
        }
        failed = failed || lws_add_http_header_content_length(wsi, lws_filepos_t(response.body.count), &cursor, end) != 0
        let closing = p.closeAfterResponse || draining
        if closing {
            failed = failed || lws_add_http_header_by_name(wsi, "connection:", "close", 5, &cursor, end) != 0
        }
        failed = failed || lws_finalize_http_header(wsi, &cursor, end) != 0
        guard !failed, let headerEnd = cursor else {
            logger.error("response headers too large", metadata: ["http.status": "\(response.status)"])
            return -1
        }
        var total = headerEnd - start
        if !body.isEmpty {
            body.withUnsafeBytes { UnsafeMutableRawPointer(headerEnd).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            total += body.count
        }
        let written = lws_write(wsi, start, total, LWS_WRITE_HTTP_FINAL)
        if p.countedInFlight { p.countedInFlight = false; srv.inFlightRequests.subtract(1, ordering: .relaxed) }
        p.resetRequest()
        if written < 0 || closing { return -1 }
        return lws_http_transaction_completed(wsi) != 0 ? -1 : 0
    }

    // MARK: - WebSocket upgrade

    func onConfirmUpgrade(_ wsi: OpaquePointer, protocolName: UnsafeMutableRawPointer?) -> Int32 {
        guard let protocolName else { return -1 }
        let upgrade = String(cString: protocolName.assumingMemoryBound(to: CChar.self)).lowercased()
        if upgrade == "h2c" { return answerIgnoringH2CUpgrade(wsi) }
        guard upgrade == "websocket" else { return -1 }
        let p = peer(for: wsi)
        p.resetRequest()
        readRequestHead(wsi, into: p)
        p.path = copyHeader(wsi, WSI_TOKEN_GET_URI) ?? "/"
        let request = HTTPRequest(method: .GET, path: p.path, query: p.query, headers: p.headers, body: [],
                                  pathParameters: [:], remoteAddress: p.remoteAddress)
        let refusal: HTTPError
        if draining {
            refusal = HTTPError(503, code: "shutting_down", message: "the server is shutting down", headers: ["retry-after": "1"])
        } else {
            switch router.match(method: .GET, path: p.path, webSocket: true) {
            case .webSocket(let accept, _, let parameters):
                var r = request
                r.pathParameters = parameters
                do {
                    let handler = try accept(r, self)
                    p.webSocket = WebSocketConnection(loop: self, request: r, handler: handler, isClient: false, peer: p)
                    return 0
                } catch let e as HTTPError {
                    refusal = e
                } catch {
                    logger.error("websocket acceptor failed", metadata: ["http.path": "\(p.path)", "error": "\(error)"])
                    refusal = .internalError()
                }
            default:
                refusal = .notFound("no WebSocket endpoint at \(p.path)")
            }
        }
        // Refuse before upgrading: write a complete response ourselves and return > 0 (lws-callbacks.h).
        writeImmediately(wsi, refusal.response, close: true)
        return 1
    }

    /// `Upgrade: h2c` (cleartext HTTP/2, e.g. `curl --http2 http://...`): answered in HTTP/1.1 as if the header were
    /// absent, as nginx does; every handler here assumes HTTP/1.1. Only on-loop routes can answer inside this
    /// callback; an async route gets 400 asking for the request without the upgrade.
    func answerIgnoringH2CUpgrade(_ wsi: OpaquePointer) -> Int32 {
        let p = peer(for: wsi)
        p.resetRequest()
        readRequestHead(wsi, into: p)
        guard let method = Self.methodTokens.first(where: { lws_hdr_total_length(wsi, $0.0) > 0 }) else { return -1 }
        p.path = copyHeader(wsi, method.0) ?? "/"
        let request = HTTPRequest(method: method.1, path: p.path, query: p.query, headers: p.headers, remoteAddress: p.remoteAddress)
        let response: HTTPResponse
        var template = "unmatched"
        switch router.match(method: method.1, path: p.path, webSocket: false) {
        case .handler(.onLoop(let run), let t, let parameters):
            var r = request
            r.pathParameters = parameters
            template = t
            response = Self.run(run, r, logger: logger)
        case .handler(.async, let t, _):
            template = t
            response = HTTPError(400, code: "h2c_not_supported", message: "send this request without Upgrade: h2c").response
        case .methodNotAllowed(let allowed):
            response = HTTPError(405, code: "method_not_allowed", message: "\(method.1.rawValue) is not allowed on \(p.path)",
                                 headers: ["allow": allowed.map(\.rawValue).joined(separator: ", ")]).response
        case .webSocket:
            response = HTTPError(426, code: "upgrade_required", message: "this path takes WebSocket connections").response
        case .notFound:
            response = HTTPError.notFound("no route for \(method.1.rawValue) \(p.path)").response
        }
        server.takeUnretainedValue().countAnswer(status: response.status)
        responseObserver?(template, method.1.rawValue, response.status)
        writeImmediately(wsi, response, close: false, headOnly: method.1 == .HEAD)
        p.resetRequest()
        return 1
    }

    /// Writes a whole HTTP/1.1 response at once, inside a callback where lws lets us answer before upgrading.
    func writeImmediately(_ wsi: OpaquePointer, _ response: HTTPResponse, close: Bool, headOnly: Bool = false) {
        var head = "HTTP/1.1 \(response.status) \(HTTPStatus.reason(response.status))\r\n"
        for (n, v) in response.headers where n != "content-length" && n != "connection" { head += "\(n): \(v)\r\n" }
        head += "content-length: \(response.body.count)\r\n"
        if close { head += "connection: close\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + (headOnly ? [] : response.body)
        let dst = sendBuffer.payload(count: bytes.count)
        bytes.withUnsafeBytes { dst.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        _ = lws_write(wsi, dst.assumingMemoryBound(to: UInt8.self), bytes.count, LWS_WRITE_HTTP_HEADERS)
    }
}
