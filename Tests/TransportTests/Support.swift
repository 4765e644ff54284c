import Foundation
import Logging
import Synchronization
import Testing
import TestSupport
@testable import Transport

/// Test helpers: servers on 127.0.0.1 with ephemeral ports, a raw HTTP client, the venv's Python.
enum Support {
    static var logger: Logger {
        var l = Logger(label: "test.transport")
        l.logLevel = .warning
        return l
    }

    static func server(loops: Int = 2, _ tweak: (inout ServerConfiguration) -> Void = { _ in }, routes: (Router) -> Void) throws -> Server {
        var config = ServerConfiguration()
        config.host = "127.0.0.1"
        config.port = 0
        config.loops = loops
        tweak(&config)
        let router = Router()
        routes(router)
        let server = Server(configuration: config, router: router, logger: logger)
        try server.start()
        return server
    }

    /// A blocking TCP socket connected to 127.0.0.1:`port`, with a receive time-out. The caller closes it.
    static func connectLoopback(port: Int, readTimeoutSeconds: Int = 5, receiveBuffer: Int32? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TransportError("socket failed") }
        var tv = timeval(tv_sec: readTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); throw TransportError("connect failed") }
        return fd
    }

    /// Sends `request` bytes on a fresh TCP connection and reads until the server closes (or 5 s pass).
    static func rawExchange(port: Int, _ request: [UInt8], readTimeoutSeconds: Int = 5) throws -> String {
        let fd = try connectLoopback(port: port, readTimeoutSeconds: readTimeoutSeconds)
        defer { close(fd) }
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: response, as: UTF8.self)
    }

    static func raw(port: Int, _ text: String) throws -> String { try rawExchange(port: port, Array(text.utf8)) }

    /// Status code of a raw HTTP response.
    static func status(_ response: String) -> Int? {
        let parts = response.split(separator: " ", maxSplits: 2)
        return parts.count >= 2 ? Int(parts[1]) : nil
    }

    static func body(_ response: String) -> String {
        guard let r = response.range(of: "\r\n\r\n") else { return "" }
        return String(response[r.upperBound...])
    }

    static var python: String { testPython }

    static func run(_ executable: String, _ arguments: [String], timeoutSeconds: Double = 30) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try runProgram(executable, arguments, timeoutSeconds: timeoutSeconds)
        return (r.status, r.stdout, r.stderr)
    }

    static func python(_ script: String, _ args: [String], timeoutSeconds: Double = 30) throws -> (status: Int32, stdout: String, stderr: String) {
        try run(testPython, ["-c", script] + args, timeoutSeconds: timeoutSeconds)
    }

    static func eventually(seconds: Double = 5, _ condition: () -> Bool) -> Bool { TestSupport.eventually(seconds: seconds, condition) }
    /// In async tests: waits without holding a thread of the cooperative pool (see TestSupport).
    static func eventually(seconds: Double = 5, _ condition: () -> Bool) async -> Bool { await TestSupport.eventually(seconds: seconds, condition) }
}

/// A WebSocket handler that echoes every message back, for the tests.
final class EchoHandler: WebSocketHandler {
    func webSocketDidOpen(_ connection: WebSocketConnection) {}
    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        switch message.kind {
        case .text: _ = connection.send(textBytes: message.bytes)
        case .binary: _ = connection.send(binary: message.bytes)
        }
    }
    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {}
}

/// Records what a client connection sees, readable from the test thread.
final class RecordingHandler: WebSocketHandler, @unchecked Sendable {
    struct State { var opened = false; var messages: [String] = []; var closed: (UInt16, String)? }
    let state = Mutex(State())
    var onOpen: ((WebSocketConnection) -> Void)?

    func webSocketDidOpen(_ connection: WebSocketConnection) {
        state.withLock { $0.opened = true }
        onOpen?(connection)
    }
    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        let text = message.text
        state.withLock { $0.messages.append(text) }
    }
    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {
        state.withLock { $0.closed = (code.rawValue, reason) }
    }
}
