import Foundation
import Synchronization
import Testing
import TestSupport
@testable import Transport

/// Opens a WebSocket with a hand-written handshake and then neither reads nor answers anything.
final class SilentPeer {
    let fd: Int32

    init(port: Int, path: String) throws {
        fd = try Support.connectLoopback(port: port, readTimeoutSeconds: 10, receiveBuffer: 4096)
        let handshake = "GET \(path) HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        _ = Array(handshake.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // Read only the 101 response headers, byte by byte, so nothing after them is consumed.
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !head.suffix(4).elementsEqual([13, 10, 13, 10]) {
            guard recv(fd, &byte, 1, 0) == 1 else { throw TransportError("no handshake answer") }
            head.append(byte)
        }
        guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101") else { throw TransportError("not upgraded") }
    }

    /// Reads and discards until the server closes the TCP connection; true if it did within the socket time-out.
    func waitForServerHangUp() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
        }
    }

    deinit { close(fd) }
}

/// Sends big messages as fast as it can on open and records what each send returned.
final class FloodHandler: WebSocketHandler, @unchecked Sendable {
    let results = Mutex<[SendResult]>([])
    func webSocketDidOpen(_ connection: WebSocketConnection) {
        let chunk = [UInt8](repeating: 0x61, count: 60_000)
        var outcomes: [SendResult] = []
        for _ in 0..<400 {
            let r = chunk.withUnsafeBytes { connection.send(binary: $0) }
            outcomes.append(r)
            if r == .dropped { break }
        }
        results.withLock { $0 = outcomes }
    }
    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {}
    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {}
}

@Suite("WebSocket limits: idle peers and slow readers", .serialized)
struct WebSocketLimitsTests {
    @Test("A peer that never answers pings is hung up after the idle time-out; one that answers stays")
    func idlePeerHungUp() async throws {
        let server = try Support.server({
            $0.webSocketPingIntervalSeconds = 1
            $0.webSocketIdleTimeoutSeconds = 2
        }, routes: { $0.webSocket("/ws") { _, _ in EchoHandler() } })
        defer { Task { await server.shutdown() } }
        let silent = try SilentPeer(port: server.port, path: "/ws")
        let live = try await runPython("""
        import asyncio, sys, websockets
        async def main():
            async with websockets.connect(f"ws://127.0.0.1:{sys.argv[1]}/ws", ping_interval=None) as ws:
                await asyncio.sleep(3.5)
                await ws.send("still here"); print(await ws.recv())
        asyncio.run(main())
        """, [String(server.port)])
        #expect(live.stdout == "still here\n", "a peer that answers pings keeps its connection: \(live.stderr)")
        #expect(silent.waitForServerHangUp(), "the silent peer was hung up")
    }

    @Test("A reader that cannot keep up: sends go straight out, then queue up to the limit, then are dropped and counted")
    func slowReader() async throws {
        let flood = FloodHandler()
        let server = try Support.server({ $0.outboundQueueLimit = 16 }, routes: { r in
            r.webSocket("/flood") { _, _ in flood }
        })
        defer { Task { await server.shutdown() } }
        let peer = try SilentPeer(port: server.port, path: "/flood")
        #expect(await eventually { !flood.results.withLock { $0.isEmpty } })
        let results = flood.results.withLock { $0 }
        #expect(results.first == .sent)
        #expect(results.filter { $0 == .queued }.count == 16)
        #expect(results.last == .dropped)
        #expect(server.droppedMessages.load(ordering: .relaxed) == 1)
        _ = peer
    }
}
