// WebSocket round-trip benchmark: N client connections on one event loop, each keeping one ~300-byte message in
// flight against an echo endpoint (Patchbay's own `WS /diagnostics/echo`, run as a separate process), until M
// round trips are done. Prints p50 / p99 / p99.9 in microseconds.
//
//   ws-bench --url ws://127.0.0.1:8080/diagnostics/echo --connections 100 --messages 100000
import BenchKit
import Foundation
import Logging
import Synchronization
import Transport

struct Options {
    var url = "ws://127.0.0.1:8080/diagnostics/echo"
    var connections = 1
    var messages = 100_000
    var size = 300
    /// Messages in flight across all connections (0: one per connection). 1 measures latency with every
    /// connection open; one per connection measures loaded throughput (RTT then includes queueing behind the others).
    var inflight = 0

    init() {
        var args = CommandLine.arguments.dropFirst().makeIterator()
        while let a = args.next() {
            switch a {
            case "--url": url = args.next() ?? url
            case "--connections": connections = Int(args.next() ?? "") ?? connections
            case "--messages": messages = Int(args.next() ?? "") ?? messages
            case "--size": size = Int(args.next() ?? "") ?? size
            case "--inflight": inflight = Int(args.next() ?? "") ?? inflight
            default: FileHandle.standardError.write(Data("unknown option \(a)\n".utf8)); exit(1)
            }
        }
    }
}

/// Loop-owned state of the whole run (every connection lives on the one loop).
final class Run: @unchecked Sendable {
    let total: Int
    let payload: [UInt8]
    var started = 0
    var samples: [Double] = []
    var openCount = 0
    var failures = 0
    var clients: [(Client, WebSocketConnection)] = []
    var next = 0
    var inflight = 0
    var expected = 0
    let done = Atomic<Bool>(false)

    init(total: Int, size: Int) {
        self.total = total
        // A Twilio-like media message: JSON with a base64 payload.
        let head = Array(#"{"event":"media","streamSid":"MZ0123456789","media":{"payload":""#.utf8)
        let tail = Array(#""}}"#.utf8)
        payload = head + [UInt8](repeating: UInt8(ascii: "A"), count: max(0, size - head.count - tail.count)) + tail
        samples.reserveCapacity(total)
    }

    func sendNext() {
        let (client, connection) = clients[next % clients.count]
        next += 1
        client.send(connection)
    }
}

final class Client: WebSocketHandler {
    let run: Run
    var sentAt: UInt64 = 0
    init(run: Run) { self.run = run }

    func send(_ c: WebSocketConnection) {
        guard run.started < run.total else { return }
        run.started += 1
        sentAt = monotonicNanos()
        _ = run.payload.withUnsafeBytes { c.send(textBytes: $0) }
    }

    func webSocketDidOpen(_ connection: WebSocketConnection) {
        run.openCount += 1
        run.clients.append((self, connection))
        guard run.openCount == run.expected else { return }
        // Everyone is connected: start `inflight` messages, round robin over the connections.
        for _ in 0..<run.inflight { run.sendNext() }
    }

    func webSocket(_ connection: WebSocketConnection, didReceive message: WebSocketMessage) {
        run.samples.append(Double(monotonicNanos() - sentAt) / 1000)
        if run.samples.count == run.total { run.done.store(true, ordering: .releasing); return }
        run.sendNext()
    }

    func webSocket(_ connection: WebSocketConnection, didCloseWith code: WebSocketCloseCode, reason: String) {
        if !run.done.load(ordering: .relaxed) { run.failures += 1 }
    }
}

let options = Options()
var logger = Logger(label: "ws-bench")
logger.logLevel = .warning
var config = ServerConfiguration()
config.host = "127.0.0.1"
config.port = 0
config.loops = 1
let container = Server(configuration: config, router: Router(), logger: logger)
try container.start()
let loop = container.loops[0]
let run = Run(total: options.messages, size: options.size)
run.expected = options.connections
run.inflight = options.inflight == 0 ? options.connections : options.inflight
let url = options.url
let connections = options.connections
let t0 = monotonicNanos()
loop.execute {
    for _ in 0..<connections {
        _ = loop.connectWebSocket(url: url, handler: Client(run: run))
    }
}
let deadline = Date().addingTimeInterval(300)
while !run.done.load(ordering: .acquiring) && Date() < deadline { usleep(1000) }
let elapsed = Double(monotonicNanos() - t0) / 1e9
let finished = Mutex<[Double]?>(nil)
loop.execute { let s = run.samples.sorted(); finished.withLock { $0 = s } }
while finished.withLock({ $0 == nil }) { usleep(1000) }
let sorted = finished.withLock { $0! }
await container.shutdown(timeout: .seconds(2))
guard sorted.count == options.messages else {
    print("incomplete: \(sorted.count) of \(options.messages) round trips")
    exit(1)
}
print("connections=\(options.connections) inflight=\(run.inflight) messages=\(options.messages) size=\(run.payload.count)B elapsed=\(format2(elapsed))s rate=\(Int(Double(sorted.count) / elapsed))/s")
print("rtt_us p50=\(format2(percentile(sorted, 0.50))) p99=\(format2(percentile(sorted, 0.99))) p99.9=\(format2(percentile(sorted, 0.999))) max=\(format2(sorted.last!))")
