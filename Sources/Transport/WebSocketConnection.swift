// One WebSocket, server or client side. Loop-owned: use it only on `loop`'s thread.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
internal import CWebSockets

/// A WebSocket connection. Sends write straight to the socket when it is writable and queue (bounded) only when
/// it is choked; one queued message goes per WRITEABLE callback, as lws requires.
public final class WebSocketConnection {
    /// The loop that owns this connection (and should own everything that talks to it per message).
    public let loop: EventLoop
    /// The upgrade request (server side) or the request we sent (client side: path, query, headers).
    public let request: HTTPRequest
    /// Whether we dialled out.
    public let isClient: Bool

    var handler: (any WebSocketHandler)?
    weak var peer: Peer?
    var wsi: OpaquePointer?
    private var queue: [[UInt8]] = []
    private var queueHead = 0
    private var assembly: [UInt8] = []
    private var assemblyKind: WebSocketMessage.Kind = .text
    private var pendingClose: (WebSocketCloseCode, String)?
    private var peerClose: (WebSocketCloseCode, String)?
    private var localClose: (WebSocketCloseCode, String)?
    private var opened = false
    private var terminated = false
    var extraHeaders = HTTPHeaders()
    var tlsRequested = false

    init(loop: EventLoop, request: HTTPRequest, handler: any WebSocketHandler, isClient: Bool, peer: Peer?) {
        self.loop = loop
        self.request = request
        self.handler = handler
        self.isClient = isClient
        self.peer = peer
    }

    /// Open and not closing.
    public var isOpen: Bool { opened && !terminated && pendingClose == nil }

    /// Largest message accepted from the peer (default: the server's `maxWebSocketMessageBytes`); past it the
    /// connection closes with 1009. A client leg to a provider that sends big messages raises it.
    public lazy var maxMessageBytes: Int = loop.configuration.maxWebSocketMessageBytes

    /// Messages waiting for the socket to drain.
    public var queuedMessages: Int { queue.count - queueHead }

    /// Messages that may wait before sends are dropped (the server's `outboundQueueLimit`).
    public var queueLimit: Int { loop.configuration.outboundQueueLimit }

    /// Caps the kernel's send buffer for this socket (SO_SNDBUF; the kernel doubles it for its bookkeeping). Linux
    /// otherwise grows it up to `tcp_wmem`'s maximum (4 MiB by default) for a peer that stops reading, so a slow
    /// reader would hide minutes of backlog in the kernel before the bounded queue could notice. Call once open.
    public func limitSendBuffer(bytes: Int) {
        guard let wsi else { return }
        let fd = lws_get_socket_fd(wsi)
        guard fd >= 0 else { return }
        var size = Int32(clamping: bytes)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    // MARK: - Sending

    /// Sends a text message (UTF-8).
    @discardableResult
    public func send(text: String) -> SendResult {
        var t = text
        return t.withUTF8 { send(UnsafeRawBufferPointer($0), protocol: LWS_WRITE_TEXT) }
    }

    /// Sends a text message whose UTF-8 bytes the caller provides (no copy unless the socket is choked).
    @discardableResult
    public func send(textBytes bytes: UnsafeRawBufferPointer) -> SendResult { send(bytes, protocol: LWS_WRITE_TEXT) }

    /// Sends a binary message.
    @discardableResult
    public func send(binary bytes: UnsafeRawBufferPointer) -> SendResult { send(bytes, protocol: LWS_WRITE_BINARY) }

    private func send(_ bytes: UnsafeRawBufferPointer, protocol kind: lws_write_protocol) -> SendResult {
        loop.assertInEventLoop()
        guard let wsi, opened, !terminated, pendingClose == nil else { return .dropped }
        // lws_send_pipe_choked() would poll() the socket on every send (a syscall per message: measured as the
        // largest syscall count under load). Instead write until lws holds a partial write of its own: the kernel
        // refused bytes, so the socket is choked and the rest queues here until WRITEABLE.
        if queuedMessages == 0 && lws_partial_buffered(wsi) == 0 {
            return write(wsi, bytes, kind) ? .sent : .dropped
        }
        if queuedMessages >= loop.configuration.outboundQueueLimit {
            loop.server.takeUnretainedValue().droppedMessages.add(1, ordering: .relaxed)
            return .dropped
        }
        var copy = [UInt8](repeating: kind == LWS_WRITE_BINARY ? 1 : 0, count: 1)
        copy.append(contentsOf: bytes)
        queue.append(copy)
        lws_callback_on_writable(wsi)
        return .queued
    }

    private func write(_ wsi: OpaquePointer, _ bytes: UnsafeRawBufferPointer, _ kind: lws_write_protocol) -> Bool {
        let dst = loop.sendBuffer.payload(count: bytes.count)
        if bytes.count > 0 { dst.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        return lws_write(wsi, dst.assumingMemoryBound(to: UInt8.self), bytes.count, kind) >= 0
    }

    /// Starts the closing handshake with `code` (sent once queued messages have gone).
    public func close(_ code: WebSocketCloseCode = .normal, reason: String = "") {
        loop.assertInEventLoop()
        guard !terminated, pendingClose == nil else { return }
        pendingClose = (code, reason)
        if let wsi { lws_callback_on_writable(wsi) }
    }

    func writable(wsi: OpaquePointer) -> Int32 {
        if queuedMessages > 0 {
            let message = queue[queueHead]
            queue[queueHead] = []
            queueHead += 1
            if queueHead == queue.count { queue.removeAll(keepingCapacity: true); queueHead = 0 }
            let ok = message.withUnsafeBytes { raw in
                write(wsi, UnsafeRawBufferPointer(rebasing: raw[1...]), raw[0] == 1 ? LWS_WRITE_BINARY : LWS_WRITE_TEXT)
            }
            if !ok { return -1 }
            if queuedMessages > 0 || pendingClose != nil {
                lws_callback_on_writable(wsi)
            } else {
                handler?.webSocketQueueDrained(self)
            }
            return 0
        }
        if let (code, reason) = pendingClose {
            localClose = (code, reason)
            var r = Array(reason.utf8.prefix(123))
            r.withUnsafeMutableBufferPointer { lws_close_reason(wsi, lws_close_status(rawValue: UInt32(code.rawValue)), $0.baseAddress, $0.count) }
            return -1
        }
        return 0
    }

    // MARK: - Events from the loop

    func didOpen(wsi: OpaquePointer) {
        self.wsi = wsi
        opened = true
        loop.server.takeUnretainedValue().openWebSockets.add(1, ordering: .relaxed)
        handler?.webSocketDidOpen(self)
        if loop.draining && !isClient { close(.goingAway, reason: "server shutting down") }
        // A close asked for before the connection opened (a client leg given up while dialling) goes out now.
        if pendingClose != nil { lws_callback_on_writable(wsi) }
    }

    func didReceive(wsi: OpaquePointer, _ input: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        guard opened, !terminated else { return 0 }
        let first = lws_is_first_fragment(wsi) != 0
        let final = lws_is_final_fragment(wsi) != 0
        let limit = maxMessageBytes
        let chunk = UnsafeRawBufferPointer(start: input, count: input == nil ? 0 : length)
        if first { assemblyKind = lws_frame_is_binary(wsi) != 0 ? .binary : .text; assembly.removeAll(keepingCapacity: true) }
        if first && final {
            guard chunk.count <= limit else { return tooBig(wsi) }
            handler?.webSocket(self, didReceive: WebSocketMessage(kind: assemblyKind, bytes: chunk))
            return 0
        }
        guard assembly.count + chunk.count <= limit else { return tooBig(wsi) }
        assembly.append(contentsOf: chunk)
        if final {
            assembly.withUnsafeBytes { handler?.webSocket(self, didReceive: WebSocketMessage(kind: assemblyKind, bytes: $0)) }
            assembly.removeAll(keepingCapacity: assembly.capacity <= 64 << 10)
        }
        return 0
    }

    private func tooBig(_ wsi: OpaquePointer) -> Int32 {
        handler?.webSocketMessageTooLarge(self)
        let reason = "message exceeds \(maxMessageBytes) bytes"
        localClose = (.messageTooBig, reason)
        var r = Array(reason.utf8)
        r.withUnsafeMutableBufferPointer { lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, $0.baseAddress, $0.count) }
        return -1
    }

    func peerSentClose(_ input: UnsafeMutableRawPointer?, _ length: Int) {
        guard let input, length >= 2 else { peerClose = (.noStatus, ""); return }
        let b = input.assumingMemoryBound(to: UInt8.self)
        let code = UInt16(b[0]) << 8 | UInt16(b[1])
        let reason = String(decoding: UnsafeRawBufferPointer(start: input + 2, count: length - 2), as: UTF8.self)
        peerClose = (WebSocketCloseCode(code), reason)
    }

    func connectFailed(_ message: String) {
        guard !terminated else { return }
        let lower = message.lowercased()
        let tls = ["ssl", "tls", "certificate", "verif", "x509"].contains { lower.contains($0) }
        localClose = (tls ? .tlsFailure : .abnormal, message)
        didTerminate(loop: loop)
    }

    /// Called once when the connection is gone (closed, failed, or destroyed with its context).
    func didTerminate(loop: EventLoop) {
        guard !terminated else { return }
        terminated = true
        if opened { loop.server.takeUnretainedValue().openWebSockets.subtract(1, ordering: .relaxed) }
        wsi = nil
        queue.removeAll()
        queueHead = 0
        let (code, reason) = peerClose ?? localClose ?? (.abnormal, "connection lost")
        let h = handler
        handler = nil
        h?.webSocket(self, didCloseWith: code, reason: reason)
    }

    // MARK: - Client

    func appendHandshakeHeaders(_ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, _ room: Int) -> Int32 {
        guard var cursor = p.pointee else { return 0 }
        var left = room
        for (name, value) in extraHeaders {
            let line = "\(name): \(value)\r\n"
            let n = line.utf8.count
            guard n < left else { return -1 }
            line.withCString { cursor.update(from: $0, count: n) }
            cursor += n
            left -= n
        }
        p.pointee = cursor
        return 0
    }
}

extension WebSocketConnection: CustomStringConvertible {
    public var description: String { "WebSocketConnection(\(isClient ? "client" : "server") \(request.path))" }
}
