// A subscriber that reads at a fraction of the speed it is sent to: a raw socket (so nothing reads ahead for it) with
// a 4 KiB receive buffer, upgraded and subscribed by hand, then read a few bytes every 100 ms on its own thread.
import Foundation
import BenchKit
import HTTPClient
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

final class SlowReader: Sendable {
    let fd: Int32

    init(host: String, channel: String) throws {
        let parts = host.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw BenchError(description: "host must be ip:port") }
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var size: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr(String(parts[0]))
        let fd = self.fd
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw BenchError(description: "connect failed: \(errno)") }
        let request = "GET /app/pbkey123?protocol=7&client=slow HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        try writeAll(Array(request.utf8))
        // The 101 response, byte by byte up to its blank line.
        var tail: [UInt8] = []
        var byte: UInt8 = 0
        while !tail.suffix(4).elementsEqual([13, 10, 13, 10]) {
            guard recv(fd, &byte, 1, 0) == 1 else { throw BenchError(description: "upgrade failed") }
            tail.append(byte)
        }
        guard String(decoding: tail, as: UTF8.self).hasPrefix("HTTP/1.1 101") else { throw BenchError(description: "upgrade refused") }
        let payload = Array("{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"\(channel)\"}}".utf8)
        let mask: [UInt8] = [0x11, 0x22, 0x33, 0x44]
        var frame: [UInt8] = [0x81, 0x80 | UInt8(payload.count)] + mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try writeAll(frame)
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw BenchError(description: "send failed: \(errno)") }
            sent += n
        }
    }

    /// Reads `bytesPerSecond` in ten slices a second until the server closes the socket.
    func start(bytesPerSecond: Int) {
        let fd = self.fd
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            let slice = max(1, bytesPerSecond / 10)
            while true {
                usleep(100_000)
                if buffer.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, slice, 0) }) <= 0 { return }
            }
        }
    }
}

/// Watches Patchbay's `patchbay_events_slow_subscribers_dropped_total` every 20 ms: when the first drop happened.
final class SlowWatch: Sendable {
    let host: String
    let http: HTTPClient
    let firstDropNanos = Atomic<UInt64>(0)
    let dropped = Atomic<Int>(0)

    init(host: String, http: HTTPClient) {
        self.host = host
        self.http = http
    }

    func start() {
        Task { [self] in
            while true {
                guard let r = try? await http.execute(HTTPClientRequest(method: "GET", url: "http://\(host)/metrics")) else { return }
                let text = String(decoding: r.body, as: UTF8.self)
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("patchbay_events_slow_subscribers_dropped_total ") }),
                   let n = Double(line.split(separator: " ").last ?? ""), n > 0 {
                    if firstDropNanos.load(ordering: .relaxed) == 0 { firstDropNanos.store(monotonicNanos(), ordering: .relaxed) }
                    dropped.store(Int(n), ordering: .relaxed)
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }
}
