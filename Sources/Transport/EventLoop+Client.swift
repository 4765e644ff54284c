// Outbound WebSocket connections (the agent leg), created on the loop that owns the call.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
internal import CWebSockets

/// Carries a loop-owned value through a `@Sendable` closure that will run on that same loop (the value is only
/// ever touched there: that is the promise that makes it safe to send).
public struct LoopBound<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

extension EventLoop {
    /// Opens a WebSocket to `url` (`ws://` or `wss://`, certificate verification on) on this loop, so the new
    /// connection shares a thread with whatever called it. Loop thread only. The host name is resolved off the loop
    /// (lws 4.1 here has no async DNS); the connection then dials the address and keeps the name for `Host` and TLS
    /// SNI / verification. Success arrives as `webSocketDidOpen`; failure as `didCloseWith` 1006 (1015 for TLS).
    public func connectWebSocket(url: String, headers: HTTPHeaders = HTTPHeaders(), handler: any WebSocketHandler) -> WebSocketConnection {
        assertInEventLoop()
        let parsed = URLComponents(string: url)
        let scheme = parsed?.scheme?.lowercased()
        let host = parsed?.host ?? ""
        let path = (parsed?.percentEncodedPath.isEmpty ?? true) ? "/" : parsed!.percentEncodedPath
        let query = parsed?.percentEncodedQuery ?? ""
        let request = HTTPRequest(method: .GET, path: path, query: query, headers: headers, remoteAddress: host)
        let connection = WebSocketConnection(loop: self, request: request, handler: handler, isClient: true, peer: nil)
        connection.extraHeaders = headers
        guard let scheme, scheme == "ws" || scheme == "wss", !host.isEmpty else {
            let box = LoopBound(connection)
            execute { box.value.connectFailed("invalid WebSocket URL: \(url)") }
            return connection
        }
        connection.tlsRequested = scheme == "wss"
        let port = parsed?.port ?? (scheme == "wss" ? 443 : 80)
        let box = LoopBound(connection)
        if Self.isIPLiteral(host) {
            execute { [self] in self.dial(box.value, address: host, host: host, port: port) }
        } else {
            // getaddrinfo blocks: run it on Dispatch's global pool, never on the loop or the Swift cooperative pool.
            DispatchQueue.global().async { [self] in
                let address = Self.resolve(host: host, port: port)
                self.execute { [self] in
                    guard let address else { box.value.connectFailed("cannot resolve host \(host)"); return }
                    self.dial(box.value, address: address, host: host, port: port)
                }
            }
        }
        return connection
    }

    private func dial(_ connection: WebSocketConnection, address: String, host: String, port: Int) {
        guard let ctx = context, !draining else { connection.connectFailed("event loop is shutting down"); return }
        let p = Peer(id: nextPeerID, wsi: nil)
        nextPeerID += 1
        p.webSocket = connection
        connection.peer = p
        peers[p.id] = p
        server.takeUnretainedValue().openConnections.add(1, ordering: .relaxed)
        let retained = Unmanaged.passRetained(p)
        let pathAndQuery = connection.request.query.isEmpty ? connection.request.path : connection.request.path + "?" + connection.request.query
        let hostHeader = (port == 80 && !connection.tlsRequested) || (port == 443 && connection.tlsRequested) ? host : "\(host):\(port)"
        let wsi: OpaquePointer? = address.withCString { cAddress in
            pathAndQuery.withCString { cPath in
                host.withCString { cHost in
                    hostHeader.withCString { cHostHeader in
                        EventLoop.protocolName.withCString { cProtocol in
                            "http/1.1".withCString { cALPN in
                                var info = lws_client_connect_info()
                                info.context = ctx
                                info.address = cAddress
                                info.port = Int32(port)
                                info.path = cPath
                                // lws writes `host` as the Host header (with the port when it is not the scheme's
                                // default, as RFC 9110 §7.2 asks: signatures over the URL depend on it) and strips
                                // the port itself for TLS SNI and certificate checks.
                                info.host = cHostHeader
                                info.origin = cHostHeader
                                info.ssl_connection = connection.tlsRequested ? Int32(LCCSCF_USE_SSL.rawValue) : 0
                                info.alpn = cALPN
                                info.local_protocol_name = cProtocol
                                info.ietf_version_or_minus_one = -1
                                info.opaque_user_data = retained.toOpaque()
                                info.retry_and_idle_policy = nil
                                return lws_client_connect_via_info(&info)
                            }
                        }
                    }
                }
            }
        }
        if wsi == nil, peers[p.id] != nil {
            // Failed synchronously without destroying a wsi: release our reference here.
            peers[p.id] = nil
            retained.release()
            server.takeUnretainedValue().openConnections.subtract(1, ordering: .relaxed)
            connection.connectFailed("cannot connect to \(host):\(port)")
        }
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Blocking name resolution (first IPv4 address, else first IPv6). Call off the loop.
    static func resolve(host: String, port: Int) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(first) }
        var candidates: [(Int32, String)] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let ai = cursor {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            if ai.pointee.ai_family == AF_INET, let sa = ai.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var addr = sin.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count))
                }
                candidates.append((AF_INET, String(cString: buffer)))
            } else if ai.pointee.ai_family == AF_INET6, let sa = ai.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var addr = sin6.pointee.sin6_addr
                    _ = inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count))
                }
                candidates.append((AF_INET6, String(cString: buffer)))
            }
            cursor = ai.pointee.ai_next
        }
        return candidates.first { $0.0 == AF_INET }?.1 ?? candidates.first?.1
    }
}
